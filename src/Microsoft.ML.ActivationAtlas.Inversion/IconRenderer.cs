using Microsoft.ML.ActivationAtlas.Inversion.Network;
using Microsoft.ML.ActivationAtlas.Inversion.Objectives;
using Microsoft.ML.ActivationAtlas.Inversion.Optimization;
using Microsoft.ML.ActivationAtlas.Inversion.Parameterization;
using Microsoft.ML.ActivationAtlas.Inversion.Transforms;

namespace Microsoft.ML.ActivationAtlas.Inversion;

/// <summary>
/// Feature inversion: optimises one icon per target direction so that the layer's activation at the objective
/// position points along the direction (lucid's <c>render_icons</c>, as used by the activation atlas).
/// The image side (parameterisation, transformation robustness and their adjoints, Adam) runs in C#; the network
/// side is an <see cref="ILayerGradientModel"/>, whose vector-Jacobian product is seeded with the objective's
/// gradient (computed in the graph where the model supports it). With <see cref="IconRenderOptions.StepPath"/> the
/// whole step except Adam can run as one ONNX graph instead (see <see cref="IconStepPath.Graph"/>).
/// </summary>
public sealed class IconRenderer
{
    private readonly ILayerGradientModel _model;
    private readonly IconRenderOptions _options;
    private readonly ImageParameterization _parameterization;
    private readonly IReadOnlyList<ImageTransform> _transforms;
    private readonly int _py;
    private readonly int _px;
    private readonly IconStepGraph? _stepGraph;
    // The objective's index in the layer's positions per channel (y * W + x, or a token index), and their count.
    private readonly int _position;
    private readonly int _plane;
    private readonly int _firstPatch;

    /// <summary>Creates a renderer for a layer model.</summary>
    /// <param name="model">The network up to the layer, with its vector-Jacobian product.</param>
    /// <param name="options">Settings; null for the defaults.</param>
    public IconRenderer(ILayerGradientModel model, IconRenderOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        _model = model;
        _options = options ?? new IconRenderOptions();
        _options.Validate();
        Objective = new ActivationObjective(model.LayerChannels, _options.Objective, _options.CosinePower, _options.CosineFloor, _options.Whitening)
        {
            Custom = _options.CustomObjective,
        };
        _parameterization = new ImageParameterization(_options.Size, _options.Size, _options.Basis, _options.DecorrelateColors, _options.MacoMagnitude);
        _transforms = _options.Transforms ?? RobustnessTransforms.For(model, _options.Size);
        (_py, _px) = _options.Position ?? (model.LayerHeight / 2, model.LayerWidth / 2);
        if (_py < 0 || _py >= model.LayerHeight || _px < 0 || _px >= model.LayerWidth)
            throw new ArgumentOutOfRangeException(nameof(options), $"The objective position ({_py}, {_px}) lies outside the {model.LayerHeight}x{model.LayerWidth} layer.");
        _firstPatch = model.Tokens?.PrefixTokens ?? 0;
        _plane = _firstPatch + model.LayerHeight * model.LayerWidth;
        _position = _firstPatch + _py * model.LayerWidth + _px;
        if (_options.Token is { } token)
        {
            if (model.Tokens is null)
                throw new ArgumentException($"IconRenderOptions.Token is {token}, but the layer is not a token layer ({model.LayerChannels}x{model.LayerHeight}x{model.LayerWidth}); use Position.", nameof(options));
            if (token < 0 || token >= _plane)
                throw new ArgumentOutOfRangeException(nameof(options), token, $"IconRenderOptions.Token {token} is out of range: the token layer has {_plane} tokens " +
                    $"({_firstPatch} class and register tokens, then {model.LayerHeight}x{model.LayerWidth} patches), indices 0 to {_plane - 1}.");
            _position = token;
            (_py, _px) = token >= _firstPatch ? ((token - _firstPatch) / model.LayerWidth, (token - _firstPatch) % model.LayerWidth) : (-1, -1);
        }
        _stepGraph = ResolveStepGraph();
    }

    /// <summary>
    /// Whether each step runs as one ONNX graph (<see cref="IconStepPath.Graph"/>, or <see cref="IconStepPath.Auto"/>
    /// resolved to it) rather than with the image side in C#.
    /// </summary>
    public bool UsesStepGraph => _stepGraph is not null;

    private IconStepGraph? ResolveStepGraph()
    {
        var path = _options.StepPath;
        if (path == IconStepPath.Host)
            return null;
        var plan = StepTransformPlan.TryCreate(_transforms, _options.Size);
        string? reason = _model is not OnnxLayerGradientModel ? $"the model is a {_model.GetType().Name}, not an OnnxLayerGradientModel"
            : _model.Tokens is not null ? "the layer is a token layer (the graph optimises a spatial position)"
            : _parameterization.Basis is not FourierImageParameterization ? $"the basis is {_options.Basis} (the graph computes the Fourier basis)"
            : plan is null ? "the transform list is not of lucid's shape (pad, jitters, random scale, random rotation, jitter, crop or pad)"
            : _options.AveragePositions ? "AveragePositions is set (the graph optimises one position)"
            : !_options.ObjectiveInGraph ? "ObjectiveInGraph is off"
            : !ObjectiveSeedGraph.Supports(Objective) ? "the objective is custom or whitened other than by the second-moment inverse"
            : null;
        if (reason is not null)
            return path == IconStepPath.Graph
                ? throw new NotSupportedException($"IconRenderOptions.StepPath is Graph, but {reason}; use StepPath Host or Auto.")
                : null;
        if (path == IconStepPath.Auto && !((OnnxLayerGradientModel)_model).UsesCuda)
            return null;
        return new IconStepGraph((FourierImageParameterization)_parameterization.Basis, _options.DecorrelateColors, plan!, Objective, _py, _px);
    }

    /// <summary>The objective used.</summary>
    public ActivationObjective Objective { get; }

    /// <summary>The objective position [y, x] in the layer (in a token layer's patch grid; (-1, -1) for a class or register token).</summary>
    public (int Y, int X) Position => (_py, _px);

    /// <summary>For a token layer, the index of the token whose activation is optimised (0 is the class token of the default layout); null for a spatial layer.</summary>
    public int? Token => _model.Tokens is null ? null : _position;

    /// <summary>Parameters per icon (the length of <see cref="RenderedIcon.Parameters"/> and of a warm start).</summary>
    public int ParameterCount => _parameterization.ParameterCount;

    /// <summary>The settings (validated; do not change them while rendering).</summary>
    public IconRenderOptions Options => _options;

    /// <summary>Renders one icon per direction.</summary>
    /// <param name="directions">Target directions, each with one value per layer channel.</param>
    /// <param name="progress">Optional progress.</param>
    /// <param name="cancellationToken">Cancels between steps.</param>
    public IReadOnlyList<RenderedIcon> Render(IReadOnlyList<float[]> directions, IProgress<IconRenderProgress>? progress = null, CancellationToken cancellationToken = default)
        => Render(directions, null, progress, cancellationToken);

    /// <summary>
    /// Renders one icon per direction; an icon with a warm start begins from the given parameters (for example its
    /// coarser parent cell's <see cref="RenderedIcon.Parameters"/>) and runs <see cref="IconRenderOptions.WarmStartSteps"/>
    /// steps of one attempt. Icons flow through the batch: when one finishes (or stops early) the next takes its place.
    /// </summary>
    /// <param name="directions">Target directions, each with one value per layer channel.</param>
    /// <param name="warmStarts">Null, or one entry per direction: null for a cold start, else <see cref="ParameterCount"/> finite values.</param>
    /// <param name="progress">Optional progress.</param>
    /// <param name="cancellationToken">Cancels between steps.</param>
    public IReadOnlyList<RenderedIcon> Render(IReadOnlyList<float[]> directions, IReadOnlyList<float[]?>? warmStarts,
        IProgress<IconRenderProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        var targets = Prepare(directions, warmStarts);
        return new Run(this, directions, targets, warmStarts, progress, cancellationToken, null).Execute()!;
    }

    // Checks the directions and warm starts; returns the prepared targets.
    private float[][] Prepare(IReadOnlyList<float[]> directions, IReadOnlyList<float[]?>? warmStarts)
    {
        ArgumentNullException.ThrowIfNull(directions);
        int channels = _model.LayerChannels;
        var targets = new float[directions.Count][];
        for (int i = 0; i < directions.Count; i++)
        {
            if (directions[i] is null)
                throw new ArgumentException($"Direction {i} is null.", nameof(directions));
            targets[i] = new float[channels];
            Objective.PrepareTarget(directions[i], targets[i], $"direction {i}");
        }
        if (warmStarts is not null)
        {
            if (warmStarts.Count != directions.Count)
                throw new ArgumentException($"There are {warmStarts.Count} warm starts for {directions.Count} directions; give one (or null) per direction.", nameof(warmStarts));
            for (int i = 0; i < warmStarts.Count; i++)
            {
                if (warmStarts[i] is not { } w)
                    continue;
                if (w.Length != ParameterCount)
                    throw new ArgumentException($"The warm start of icon {i} has {w.Length} parameters; icons of {_options.Size} px with the {_options.Basis} basis have {ParameterCount}.", nameof(warmStarts));
                int bad = Array.FindIndex(w, v => !float.IsFinite(v));
                if (bad >= 0)
                    throw new ArgumentException($"The warm start of icon {i} has a non-finite value ({w[bad]}) at parameter {bad}.", nameof(warmStarts));
            }
        }
        return targets;
    }

    /// <summary>
    /// Renders icons in order until <paramref name="budget"/> is spent: the first batch always starts, no icon starts
    /// after the budget, the ones under way finish, and the rest are null (for example the finer grids of an atlas,
    /// coarse to fine, as far as time allows).
    /// </summary>
    /// <param name="directions">Target directions, each with one value per layer channel.</param>
    /// <param name="warmStarts">Null, or one entry per direction: null for a cold start, else <see cref="ParameterCount"/> finite values.</param>
    /// <param name="budget">Wall-clock time after which no further icon starts; must be positive.</param>
    /// <param name="progress">Optional progress.</param>
    /// <param name="cancellationToken">Cancels between steps.</param>
    public IReadOnlyList<RenderedIcon?> RenderWithin(IReadOnlyList<float[]> directions, IReadOnlyList<float[]?>? warmStarts, TimeSpan budget,
        IProgress<IconRenderProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        if (budget <= TimeSpan.Zero)
            throw new ArgumentOutOfRangeException(nameof(budget), budget, "The icon time budget must be positive; with no time for icons, do not render them.");
        var targets = Prepare(directions, warmStarts);
        return new Run(this, directions, targets, warmStarts, progress, cancellationToken, budget).Execute();
    }

    // One Render call: a queue of (icon, attempt) work items flowing through BatchSize slots.
    private sealed class Run
    {
        private readonly IconRenderer _r;
        private readonly IReadOnlyList<float[]> _directions;
        private readonly float[][] _targets;
        private readonly IReadOnlyList<float[]?>? _warm;
        private readonly IProgress<IconRenderProgress>? _progress;
        private readonly CancellationToken _ct;
        private readonly RenderedIcon?[] _result;
        private readonly List<IconEvaluation>[] _history;
        private readonly int[] _attemptsLeft;
        private readonly int[] _stepsTaken;
        private readonly bool[] _stoppedEarly;
        private readonly List<(int Icon, int Attempt)> _work = [];
        private readonly IObjectiveGradientModel? _inGraph;
        private readonly float[] _input, _inputGrad, _layer, _seed, _packedTargets, _objectiveScratch;
        private readonly double[] _values;
        private readonly float[] _spectrum = [], _spectrumGrad = [], _affine = [], _clamp = [], _window = [];
        private readonly Slot[] _slots;
        private readonly TransformChain _clean = new();
        private readonly TimeSpan? _budget;
        private readonly System.Diagnostics.Stopwatch _clock = System.Diagnostics.Stopwatch.StartNew();
        private int _next;
        private int _iconsDone;
        private long _iconSteps;

        public Run(IconRenderer r, IReadOnlyList<float[]> directions, float[][] targets, IReadOnlyList<float[]?>? warm,
            IProgress<IconRenderProgress>? progress, CancellationToken ct, TimeSpan? budget)
        {
            _budget = budget;
            _r = r;
            _directions = directions;
            _targets = targets;
            _warm = warm;
            _progress = progress;
            _ct = ct;
            int n = directions.Count, batch = Math.Min(r._options.BatchSize, Math.Max(1, n));
            _result = new RenderedIcon?[n];
            _history = new List<IconEvaluation>[n];
            _attemptsLeft = new int[n];
            _stepsTaken = new int[n];
            _stoppedEarly = new bool[n];
            for (int i = 0; i < n; i++)
            {
                _history[i] = [];
                _attemptsLeft[i] = warm?[i] is null ? r._options.Attempts : 1;
                for (int a = 0; a < _attemptsLeft[i]; a++)
                    _work.Add((i, a));
            }
            var m = r._model;
            int inputSize = 3 * m.InputHeight * m.InputWidth, c = m.LayerChannels, layerSize = c * r._plane;
            _input = new float[batch * inputSize];
            _inputGrad = new float[batch * inputSize];
            _layer = new float[batch * layerSize];
            _seed = new float[batch * layerSize];
            _packedTargets = new float[batch * c];
            _objectiveScratch = new float[batch * ObjectiveScratchPerIcon(c)];
            _values = new double[batch];
            _inGraph = r._options.ObjectiveInGraph && !r._options.AveragePositions && m is IObjectiveGradientModel og && og.SupportsObjective(r.Objective) ? og : null;
            if (r._stepGraph is { } graph)
            {
                _spectrum = new float[batch * graph.ParameterCount];
                _spectrumGrad = new float[batch * graph.ParameterCount];
                _affine = new float[batch * StepTransformPlan.AffineSize];
                _clamp = new float[batch * StepTransformPlan.ClampSize];
                _window = new float[batch * StepTransformPlan.WindowSize];
            }
            _slots = new Slot[batch];
            int imageSize = 3 * r._options.Size * r._options.Size;
            for (int i = 0; i < batch; i++)
                _slots[i] = new Slot(r._parameterization, r._parameterization.ParameterCount, imageSize, r._options.LearningRate);
        }

        public IReadOnlyList<RenderedIcon?> Execute()
        {
            var o = _r._options;
            var m = _r._model;
            int s = o.Size, nh = m.InputHeight, nw = m.InputWidth, inputSize = 3 * nh * nw;
            var po = new ParallelOptions { CancellationToken = _ct };
            var active = new List<Slot>(_slots.Length);
            var due = new List<Slot>(_slots.Length);
            while (true)
            {
                bool open = _budget is not { } b || _next == 0 || _clock.Elapsed < b;
                foreach (var slot in _slots)
                    if (!slot.Active && _next < _work.Count && open)
                        Start(slot, _work[_next++]);
                // Icons of no steps (Steps = 0) are their initial parameters: one clean evaluation finishes them.
                due.Clear();
                foreach (var slot in _slots)
                    if (slot.Active && slot.Budget == 0)
                        due.Add(slot);
                if (due.Count > 0)
                {
                    Evaluate(due);
                    continue;
                }
                active.Clear();
                foreach (var slot in _slots)
                    if (slot.Active)
                        active.Add(slot);
                if (active.Count == 0)
                    break;
                _ct.ThrowIfCancellationRequested();
                int count = active.Count;
                if (_r._stepGraph is { } graph)
                {
                    GraphStep(active, graph);
                    Parallel.For(0, count, po, k => AdamStep(active[k]));
                }
                else
                {
                    Parallel.For(0, count, po, k =>
                    {
                        var slot = active[k];
                        _r._parameterization.Forward(slot.Parameters, slot.Image, slot.Workspace);
                        slot.Chain.Draw(_r._transforms, slot.Random, s, s, nh, nw);
                        slot.Chain.Forward(slot.Image, _input.AsSpan(k * inputSize, inputSize));
                    });
                    NetworkStep(active);
                    Parallel.For(0, count, po, k =>
                    {
                        var slot = active[k];
                        slot.Chain.Adjoint(_inputGrad.AsSpan(k * inputSize, inputSize), slot.ImageGradient);
                        Array.Clear(slot.ParameterGradient);
                        _r._parameterization.Backward(slot.Parameters, slot.Image, slot.ImageGradient, slot.ParameterGradient, slot.Workspace);
                        AdamStep(slot);
                    });
                }
                _iconSteps += count;
                double mean = 0;
                for (int k = 0; k < count; k++)
                    mean += _values[k];
                mean /= count;
                due.Clear();
                foreach (var slot in active)
                    if (slot.Step % o.EvaluationInterval == 0 || slot.Step == slot.Budget)
                        due.Add(slot);
                if (due.Count > 0)
                    Evaluate(due);
                var lead = active[0];
                _progress?.Report(new IconRenderProgress(_iconsDone, _directions.Count, lead.Attempt, lead.Step, lead.Budget, mean, _iconSteps));
            }
            // Out of time: an icon with some of its attempts done keeps the best of them.
            for (int i = 0; i < _result.Length; i++)
                if (_result[i] is not null && _attemptsLeft[i] > 0)
                    Complete(i);
            return _result;
        }

        private void Start(Slot slot, (int Icon, int Attempt) work)
        {
            var o = _r._options;
            slot.Icon = work.Icon;
            slot.Attempt = work.Attempt;
            slot.Random = new Random(MixSeed(o.Seed, work.Icon, work.Attempt));
            if (_warm?[work.Icon] is { } w)
            {
                w.CopyTo(slot.Parameters, 0);
                slot.Budget = o.WarmSteps;
            }
            else
            {
                _r._parameterization.Initialize(slot.Parameters, slot.Random);
                slot.Budget = o.Steps;
            }
            slot.Adam.Reset();
            slot.Step = 0;
            slot.Best = double.NegativeInfinity;
            slot.SinceImprovement = 0;
            slot.Active = true;
        }

        private void AdamStep(Slot slot)
        {
            var o = _r._options;
            double lr = LearningRateSchedules.At(o.LearningRateSchedule, o.LearningRate, o.FinalLearningRateFraction, slot.Step, slot.Budget);
            slot.Adam.Step(slot.Parameters, slot.ParameterGradient, lr);
            slot.Step++;
        }

        // The whole step in one graph run per network batch: the icons' spectra and transform draws in, the layer and
        // the spectrum gradients out.
        private void GraphStep(List<Slot> active, IconStepGraph graph)
        {
            var model = (OnnxLayerGradientModel)_r._model;
            int count = active.Count, c = model.LayerChannels, p = graph.ParameterCount, layerSize = c * model.LayerHeight * model.LayerWidth;
            const int a = StepTransformPlan.AffineSize, cl = StepTransformPlan.ClampSize, w = StepTransformPlan.WindowSize;
            for (int k = 0; k < count; k++)
            {
                var slot = active[k];
                graph.Plan.Draw(slot.Random, _affine.AsSpan(k * a, a), _clamp.AsSpan(k * cl, cl), _window.AsSpan(k * w, w));
                slot.Parameters.CopyTo(_spectrum, k * p);
                _targets[slot.Icon].CopyTo(_packedTargets, k * c);
            }
            int max = Math.Max(1, model.MaxBatchSize);
            for (int b = 0; b < count; b += max)
            {
                int n = Math.Min(max, count - b);
                model.Step(graph, n, _spectrum.AsSpan(b * p, n * p), _affine.AsSpan(b * a, n * a), _clamp.AsSpan(b * cl, n * cl), _window.AsSpan(b * w, n * w),
                    _packedTargets.AsSpan(b * c, n * c), _layer.AsSpan(b * layerSize, n * layerSize), _spectrumGrad.AsSpan(b * p, n * p));
            }
            _r.EvaluateAll(_layer, _packedTargets, count, _values, _objectiveScratch);
            for (int k = 0; k < count; k++)
                _spectrumGrad.AsSpan(k * p, p).CopyTo(active[k].ParameterGradient);
        }

        private void NetworkStep(List<Slot> active)
        {
            int count = active.Count, c = _r._model.LayerChannels;
            for (int k = 0; k < count; k++)
                _targets[active[k].Icon].CopyTo(_packedTargets, k * c);
            if (_inGraph is not null)
            {
                _r.RunObjectiveBackward(_inGraph, _input, count, _packedTargets, _layer, _inputGrad);
                _r.EvaluateAll(_layer, _packedTargets, count, _values, _objectiveScratch);
            }
            else if (!_r.Objective.IsLinear)
            {
                _r.RunForward(_input, count, _layer);
                _r.FillSeeds(_layer, _packedTargets, count, _seed, _values, _objectiveScratch);
                _r.RunBackward(_input, count, _seed, _layer, _inputGrad);
            }
            else
            {
                _r.FillSeeds(null, _packedTargets, count, _seed, _values, _objectiveScratch);
                _r.RunBackward(_input, count, _seed, _layer, _inputGrad);
                _r.EvaluateAll(_layer, _packedTargets, count, _values, _objectiveScratch);
            }
        }

        // Clean evaluation: the untransformed icon, only resized to the network's input; keeps each icon's best parameters.
        private void Evaluate(List<Slot> due)
        {
            var o = _r._options;
            var m = _r._model;
            int s = o.Size, nh = m.InputHeight, nw = m.InputWidth, inputSize = 3 * nh * nw, c = m.LayerChannels, count = due.Count;
            for (int k = 0; k < count; k++)
            {
                var slot = due[k];
                _r._parameterization.Forward(slot.Parameters, slot.Image, slot.Workspace);
                _clean.Draw(RobustnessTransforms.None, slot.Random, s, s, nh, nw);
                _clean.Forward(slot.Image, _input.AsSpan(k * inputSize, inputSize));
                _targets[slot.Icon].CopyTo(_packedTargets, k * c);
            }
            _r.RunForward(_input, count, _layer);
            _r.EvaluateAll(_layer, _packedTargets, count, _values, _objectiveScratch);
            for (int k = 0; k < count; k++)
            {
                var slot = due[k];
                double value = _values[k];
                var activation = _r.ActivationAt(_layer, k);
                double fidelity = ActivationObjective.Cosine(activation, _directions[slot.Icon]);
                _history[slot.Icon].Add(new IconEvaluation(slot.Attempt, slot.Step, value, fidelity));
                if (value > slot.Best + o.EarlyStoppingTolerance * Math.Abs(slot.Best) || double.IsNegativeInfinity(slot.Best))
                    slot.SinceImprovement = 0;
                else
                    slot.SinceImprovement++;
                if (value > slot.Best)
                {
                    slot.Best = value;
                    slot.BestFidelity = fidelity;
                    slot.BestActivation = activation;
                    slot.BestStep = slot.Step;
                    slot.Parameters.CopyTo(slot.BestParameters, 0);
                }
                bool early = o.EarlyStoppingPatience > 0 && slot.SinceImprovement >= o.EarlyStoppingPatience && slot.Step < slot.Budget;
                if (early || slot.Step >= slot.Budget)
                    Finish(slot, early);
            }
        }

        private void Finish(Slot slot, bool early)
        {
            int i = slot.Icon;
            slot.Active = false;
            _stepsTaken[i] += slot.Step;
            _stoppedEarly[i] |= early;
            // Best attempt by clean objective; on a tie the lower attempt wins, so batching does not change the choice.
            if (_result[i] is not { } kept || slot.Best > kept.Objective || (slot.Best == kept.Objective && slot.Attempt < kept.Attempt))
            {
                var image = new float[_r._parameterization.ImageSize];
                _r._parameterization.Forward(slot.BestParameters, image, slot.Workspace);
                _result[i] = new RenderedIcon(image, _r._options.Size, slot.BestFidelity, slot.Best, slot.Attempt, (float[])slot.BestParameters.Clone(),
                    slot.BestStep, 0, false, _warm?[i] is not null, _history[i], slot.BestActivation);
            }
            if (--_attemptsLeft[i] == 0)
                Complete(i);
        }

        private void Complete(int i)
        {
            var r = _result[i]!;
            _result[i] = new RenderedIcon(r.Pixels, r.Size, r.Fidelity, r.Objective, r.Attempt, r.Parameters, r.BestStep, _stepsTaken[i],
                _stoppedEarly[i], r.WarmStarted, _history[i].OrderBy(e => e.Attempt).ThenBy(e => e.Step).ToArray(), r.Activation);
            _attemptsLeft[i] = 0;
            _iconsDone++;
        }
    }

    private float[] ActivationAt(float[] layer, int i)
    {
        var a = new float[_model.LayerChannels];
        ActivationAt(layer, i, a);
        return a;
    }

    private void ActivationAt(float[] layer, int i, Span<float> a)
    {
        int c = _model.LayerChannels, plane = _plane;
        if (_options.AveragePositions)
        {
            // The mean over the spatial positions (a token layer's patch tokens).
            int patches = plane - _firstPatch;
            for (int ch = 0; ch < c; ch++)
                a[ch] = System.Numerics.Tensors.TensorPrimitives.Sum(layer.AsSpan((i * c + ch) * plane + _firstPatch, patches)) / patches;
            return;
        }
        int o = i * c * plane + _position;
        for (int ch = 0; ch < c; ch++)
            a[ch] = layer[o + ch * plane];
    }

    // Per icon of a batch: the activation, the objective's gradient and its scratch (2 c).
    private static int ObjectiveScratchPerIcon(int c) => 4 * c;

    private void EvaluateAll(float[] layer, float[] targets, int count, double[] values, float[] scratch)
    {
        int c = _model.LayerChannels, per = ObjectiveScratchPerIcon(c);
        Parallel.For(0, count, i =>
        {
            var own = scratch.AsSpan(i * per, per);
            own.Clear(); // as fresh buffers: a custom objective may add into its gradient
            ActivationAt(layer, i, own[..c]);
            values[i] = Objective.Evaluate(own[..c], targets.AsSpan(i * c, c), Span<float>.Empty, own[(2 * c)..]);
        });
    }

    // seed = -d(objective)/d(layer) at the objective position (the optimiser minimises), zero elsewhere.
    private void FillSeeds(float[]? layer, float[] targets, int count, float[] seed, double[] values, float[] objectiveScratch)
    {
        int c = _model.LayerChannels, plane = _plane, layerSize = c * plane, per = ObjectiveScratchPerIcon(c);
        Array.Clear(seed, 0, count * layerSize);
        Parallel.For(0, count, i =>
        {
            var own = objectiveScratch.AsSpan(i * per, per);
            Span<float> activation = own[..c], grad = own.Slice(c, c), scratch = own[(2 * c)..];
            own.Clear(); // as fresh buffers: a custom objective may add into its gradient
            if (layer is not null)
                ActivationAt(layer, i, activation);
            values[i] = Objective.Evaluate(activation, targets.AsSpan(i * c, c), grad, scratch);
            if (_options.AveragePositions)
            {
                int patches = plane - _firstPatch;
                for (int ch = 0; ch < c; ch++)
                    seed.AsSpan(i * layerSize + ch * plane + _firstPatch, patches).Fill(-grad[ch] / patches);
                return;
            }
            int o = i * layerSize + _position;
            for (int ch = 0; ch < c; ch++)
                seed[o + ch * plane] = -grad[ch];
        });
    }

    private void RunForward(float[] input, int count, float[] layer)
    {
        int inputSize = 3 * _model.InputHeight * _model.InputWidth, layerSize = _model.LayerChannels * _plane;
        int max = Math.Max(1, _model.MaxBatchSize);
        for (int b = 0; b < count; b += max)
        {
            int n = Math.Min(max, count - b);
            _model.Forward(input.AsSpan(b * inputSize, n * inputSize), n, layer.AsSpan(b * layerSize, n * layerSize));
        }
    }

    private void RunObjectiveBackward(IObjectiveGradientModel model, float[] input, int count, float[] targets, float[] layer, float[] inputGrad)
    {
        int inputSize = 3 * _model.InputHeight * _model.InputWidth, c = _model.LayerChannels, layerSize = c * _plane;
        int max = Math.Max(1, _model.MaxBatchSize);
        for (int b = 0; b < count; b += max)
        {
            int n = Math.Min(max, count - b);
            model.BackwardObjective(Objective, _position, input.AsSpan(b * inputSize, n * inputSize), n, targets.AsSpan(b * c, n * c),
                layer.AsSpan(b * layerSize, n * layerSize), inputGrad.AsSpan(b * inputSize, n * inputSize));
        }
    }

    private void RunBackward(float[] input, int count, float[] seed, float[] layer, float[] inputGrad)
    {
        int inputSize = 3 * _model.InputHeight * _model.InputWidth, layerSize = _model.LayerChannels * _plane;
        int max = Math.Max(1, _model.MaxBatchSize);
        for (int b = 0; b < count; b += max)
        {
            int n = Math.Min(max, count - b);
            _model.Backward(input.AsSpan(b * inputSize, n * inputSize), n, seed.AsSpan(b * layerSize, n * layerSize),
                layer.AsSpan(b * layerSize, n * layerSize), inputGrad.AsSpan(b * inputSize, n * inputSize));
        }
    }

    // SplitMix64 of (seed, icon, attempt): independent, reproducible streams per icon and attempt.
    internal static int MixSeed(int seed, int icon, int attempt)
    {
        ulong z = Numerics.SplitMix64.Mix(unchecked((ulong)(uint)seed * Numerics.SplitMix64.Golden + (ulong)(uint)icon * 0xBF58476D1CE4E5B9UL
            + (ulong)(uint)attempt * 0x94D049BB133111EBUL + 0x632BE59BD9B4E019UL));
        return (int)(z & 0x7FFFFFFF);
    }

    private sealed class Slot(ImageParameterization parameterization, int nParams, int imageSize, double learningRate)
    {
        public float[] Parameters { get; } = new float[nParams];
        public float[] BestParameters { get; } = new float[nParams];
        public float[] ParameterGradient { get; } = new float[nParams];
        public float[] Image { get; } = new float[imageSize];
        public float[] ImageGradient { get; } = new float[imageSize];
        public ImageParameterization.Workspace Workspace { get; } = parameterization.CreateWorkspace();
        public TransformChain Chain { get; } = new();
        public AdamOptimizer Adam { get; } = new(nParams, learningRate);
        public Random Random { get; set; } = new(0);
        public bool Active { get; set; }
        public int Icon { get; set; }
        public int Attempt { get; set; }
        public int Step { get; set; }
        public int Budget { get; set; }
        public double Best { get; set; }
        public double BestFidelity { get; set; }
        public float[] BestActivation { get; set; } = [];
        public int BestStep { get; set; }
        public int SinceImprovement { get; set; }
    }
}
