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
/// gradient computed in C#.
/// </summary>
public sealed class IconRenderer
{
    private readonly ILayerGradientModel _model;
    private readonly IconRenderOptions _options;
    private readonly ImageParameterization _parameterization;
    private readonly IReadOnlyList<ImageTransform> _transforms;
    private readonly int _py;
    private readonly int _px;

    /// <summary>Creates a renderer for a layer model.</summary>
    /// <param name="model">The network up to the layer, with its vector-Jacobian product.</param>
    /// <param name="options">Settings; null for the defaults.</param>
    public IconRenderer(ILayerGradientModel model, IconRenderOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        _model = model;
        _options = options ?? new IconRenderOptions();
        _options.Validate();
        Objective = new ActivationObjective(model.LayerChannels, _options.Objective, _options.CosinePower, _options.CosineFloor, _options.Whitening);
        _parameterization = new ImageParameterization(_options.Size, _options.Size, _options.Basis, _options.DecorrelateColors);
        _transforms = _options.Transforms ?? RobustnessTransforms.Atlas(_options.Size);
        (_py, _px) = _options.Position ?? (model.LayerHeight / 2, model.LayerWidth / 2);
        if (_py < 0 || _py >= model.LayerHeight || _px < 0 || _px >= model.LayerWidth)
            throw new ArgumentOutOfRangeException(nameof(options), $"The objective position ({_py}, {_px}) lies outside the {model.LayerHeight}x{model.LayerWidth} layer.");
    }

    /// <summary>The objective used.</summary>
    public ActivationObjective Objective { get; }

    /// <summary>The objective position [y, x] in the layer.</summary>
    public (int Y, int X) Position => (_py, _px);

    /// <summary>Renders one icon per direction.</summary>
    /// <param name="directions">Target directions, each with one value per layer channel.</param>
    /// <param name="progress">Optional progress.</param>
    /// <param name="cancellationToken">Cancels between steps.</param>
    public IReadOnlyList<RenderedIcon> Render(IReadOnlyList<float[]> directions, IProgress<IconRenderProgress>? progress = null, CancellationToken cancellationToken = default)
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
        var result = new RenderedIcon[directions.Count];
        for (int start = 0; start < directions.Count; start += _options.BatchSize)
        {
            int count = Math.Min(_options.BatchSize, directions.Count - start);
            RenderBatch(directions, targets, start, count, result, progress, cancellationToken);
        }
        return result;
    }

    private void RenderBatch(IReadOnlyList<float[]> directions, float[][] targets, int start, int count, RenderedIcon[] result,
        IProgress<IconRenderProgress>? progress, CancellationToken ct)
    {
        int s = _options.Size, imageSize = 3 * s * s, nParams = _parameterization.ParameterCount;
        int nh = _model.InputHeight, nw = _model.InputWidth, inputSize = 3 * nh * nw;
        int c = _model.LayerChannels, lh = _model.LayerHeight, lw = _model.LayerWidth, layerSize = c * lh * lw;
        var icons = new IconState[count];
        for (int i = 0; i < count; i++)
            icons[i] = new IconState(_parameterization, nParams, imageSize, _options.LearningRate);
        var input = new float[count * inputSize];
        var inputGrad = new float[count * inputSize];
        var layer = new float[count * layerSize];
        var seed = new float[count * layerSize];
        var values = new double[count];
        var po = new ParallelOptions { CancellationToken = ct };
        var clean = new TransformChain();
        var inGraph = _options.ObjectiveInGraph && !_options.AveragePositions && _model is IObjectiveGradientModel m && m.SupportsObjective(Objective) ? m : null;
        var packedTargets = new float[count * c];
        for (int i = 0; i < count; i++)
            targets[start + i].CopyTo(packedTargets, i * c);

        for (int attempt = 0; attempt < _options.Attempts; attempt++)
        {
            for (int i = 0; i < count; i++)
            {
                var icon = icons[i];
                icon.Random = new Random(MixSeed(_options.Seed, start + i, attempt));
                _parameterization.Initialize(icon.Parameters, icon.Random);
                icon.Adam.Reset();
            }
            for (int step = 0; step < _options.Steps; step++)
            {
                ct.ThrowIfCancellationRequested();
                Parallel.For(0, count, po, i =>
                {
                    var icon = icons[i];
                    _parameterization.Forward(icon.Parameters, icon.Image, icon.Workspace);
                    icon.Chain.Draw(_transforms, icon.Random, s, s, nh, nw);
                    icon.Chain.Forward(icon.Image, input.AsSpan(i * inputSize, inputSize));
                });
                if (inGraph is not null)
                {
                    RunObjectiveBackward(inGraph, input, count, packedTargets, layer, inputGrad);
                    EvaluateAll(layer, targets, start, count, values);
                }
                else if (!Objective.IsLinear)
                {
                    RunForward(input, count, layer);
                    FillSeeds(layer, targets, start, count, seed, values);
                    RunBackward(input, count, seed, layer, inputGrad);
                }
                else
                {
                    FillSeeds(null, targets, start, count, seed, values);
                    RunBackward(input, count, seed, layer, inputGrad);
                    EvaluateAll(layer, targets, start, count, values);
                }
                Parallel.For(0, count, po, i =>
                {
                    var icon = icons[i];
                    icon.Chain.Adjoint(inputGrad.AsSpan(i * inputSize, inputSize), icon.ImageGradient);
                    Array.Clear(icon.ParameterGradient);
                    _parameterization.Backward(icon.Image, icon.ImageGradient, icon.ParameterGradient, icon.Workspace);
                    icon.Adam.Step(icon.Parameters, icon.ParameterGradient);
                });
                progress?.Report(new IconRenderProgress(start, targets.Length, attempt, step + 1, _options.Steps, values.Average()));
            }

            // Clean evaluation: the untransformed icon, only resized to the network's input.
            for (int i = 0; i < count; i++)
            {
                var icon = icons[i];
                _parameterization.Forward(icon.Parameters, icon.Image, icon.Workspace);
                clean.Draw(RobustnessTransforms.None, icon.Random, s, s, nh, nw);
                clean.Forward(icon.Image, input.AsSpan(i * inputSize, inputSize));
            }
            RunForward(input, count, layer);
            EvaluateAll(layer, targets, start, count, values);
            for (int i = 0; i < count; i++)
            {
                if (result[start + i] is { } best && best.Objective >= values[i])
                    continue;
                var activation = ActivationAt(layer, i);
                double fidelity = ActivationObjective.Cosine(activation, directions[start + i]);
                result[start + i] = new RenderedIcon((float[])icons[i].Image.Clone(), s, fidelity, values[i], attempt);
            }
        }
        progress?.Report(new IconRenderProgress(start + count, targets.Length, _options.Attempts - 1, _options.Steps, _options.Steps, values.Average()));
    }

    private float[] ActivationAt(float[] layer, int i)
    {
        int c = _model.LayerChannels, lh = _model.LayerHeight, lw = _model.LayerWidth, plane = lh * lw;
        var a = new float[c];
        if (_options.AveragePositions)
        {
            for (int ch = 0; ch < c; ch++)
                a[ch] = System.Numerics.Tensors.TensorPrimitives.Sum(layer.AsSpan((i * c + ch) * plane, plane)) / plane;
            return a;
        }
        int o = i * c * plane + _py * lw + _px;
        for (int ch = 0; ch < c; ch++)
            a[ch] = layer[o + ch * plane];
        return a;
    }

    private void EvaluateAll(float[] layer, float[][] targets, int start, int count, double[] values) =>
        Parallel.For(0, count, i =>
        {
            var scratch = new float[2 * _model.LayerChannels];
            values[i] = Objective.Evaluate(ActivationAt(layer, i), targets[start + i], Span<float>.Empty, scratch);
        });

    // seed = -d(objective)/d(layer) at the objective position (the optimiser minimises), zero elsewhere.
    private void FillSeeds(float[]? layer, float[][] targets, int start, int count, float[] seed, double[] values)
    {
        int c = _model.LayerChannels, lh = _model.LayerHeight, lw = _model.LayerWidth, layerSize = c * lh * lw;
        Array.Clear(seed, 0, count * layerSize);
        Parallel.For(0, count, i =>
        {
            var grad = new float[c];
            var scratch = new float[2 * c];
            var activation = layer is null ? new float[c] : ActivationAt(layer, i);
            values[i] = Objective.Evaluate(activation, targets[start + i], grad, scratch);
            if (_options.AveragePositions)
            {
                int plane = lh * lw;
                for (int ch = 0; ch < c; ch++)
                    seed.AsSpan(i * layerSize + ch * plane, plane).Fill(-grad[ch] / plane);
                return;
            }
            int o = i * layerSize + _py * lw + _px;
            for (int ch = 0; ch < c; ch++)
                seed[o + ch * lh * lw] = -grad[ch];
        });
    }

    private void RunForward(float[] input, int count, float[] layer)
    {
        int inputSize = 3 * _model.InputHeight * _model.InputWidth, layerSize = _model.LayerChannels * _model.LayerHeight * _model.LayerWidth;
        int max = Math.Max(1, _model.MaxBatchSize);
        for (int b = 0; b < count; b += max)
        {
            int n = Math.Min(max, count - b);
            _model.Forward(input.AsSpan(b * inputSize, n * inputSize), n, layer.AsSpan(b * layerSize, n * layerSize));
        }
    }

    private void RunObjectiveBackward(IObjectiveGradientModel model, float[] input, int count, float[] targets, float[] layer, float[] inputGrad)
    {
        int inputSize = 3 * _model.InputHeight * _model.InputWidth, c = _model.LayerChannels, layerSize = c * _model.LayerHeight * _model.LayerWidth;
        int max = Math.Max(1, _model.MaxBatchSize);
        for (int b = 0; b < count; b += max)
        {
            int n = Math.Min(max, count - b);
            model.BackwardObjective(Objective, _py, _px, input.AsSpan(b * inputSize, n * inputSize), n, targets.AsSpan(b * c, n * c),
                layer.AsSpan(b * layerSize, n * layerSize), inputGrad.AsSpan(b * inputSize, n * inputSize));
        }
    }

    private void RunBackward(float[] input, int count, float[] seed, float[] layer, float[] inputGrad)
    {
        int inputSize = 3 * _model.InputHeight * _model.InputWidth, layerSize = _model.LayerChannels * _model.LayerHeight * _model.LayerWidth;
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

    private sealed class IconState(ImageParameterization parameterization, int nParams, int imageSize, double learningRate)
    {
        public float[] Parameters { get; } = new float[nParams];
        public float[] ParameterGradient { get; } = new float[nParams];
        public float[] Image { get; } = new float[imageSize];
        public float[] ImageGradient { get; } = new float[imageSize];
        public ImageParameterization.Workspace Workspace { get; } = parameterization.CreateWorkspace();
        public TransformChain Chain { get; } = new();
        public AdamOptimizer Adam { get; } = new(nParams, learningRate);
        public Random Random { get; set; } = new(0);
    }
}
