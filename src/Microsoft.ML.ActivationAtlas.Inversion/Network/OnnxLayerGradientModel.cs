using Microsoft.ML.ActivationAtlas.Gradients;
using Microsoft.ML.ActivationAtlas.Onnx;
using Microsoft.ML.ActivationAtlas.Onnx.Protobuf;
using Microsoft.ML.OnnxRuntime;

namespace Microsoft.ML.ActivationAtlas.Inversion.Network;

/// <summary>
/// An ONNX model cut at a hidden layer, run by ONNX Runtime: the layer for a batch of images and, through the
/// reverse-mode graph of <see cref="GradientGraphBuilder"/>, the gradient of a seeded layer with respect to the
/// images. The objective's seed can also be computed inside the graph from per-icon targets
/// (<see cref="IObjectiveGradientModel"/>), so one run per step serves non-linear objectives.
/// A 3-D token layer of a vision transformer (<see cref="OnnxLayerModelOptions.Tokens"/>) is presented channels first,
/// <c>[N, C, T]</c>, with its patch grid as <see cref="LayerHeight"/> x <see cref="LayerWidth"/> (see <see cref="Tokens"/>).
/// </summary>
public sealed class OnnxLayerGradientModel : ILayerGradientModel, IObjectiveGradientModel
{
    private const string SeedName = "vjp_seed";
    private const string GradientName = "vjp_gradient";
    private const string ChannelsFirstSuffix = "__channels_first";
    private readonly ModelProto _cut;
    private readonly OnnxLayerModelOptions _options;
    private readonly InferenceSession _forward;
    // The tensor the sessions output: the layer, or for an [N, T, C] token layer its [N, C, T] transpose.
    private readonly string _output;
    private InferenceSession? _vjp;
    private readonly Dictionary<string, InferenceSession> _objectiveSessions = new(StringComparer.Ordinal);
    private readonly Dictionary<(int Batch, int Size), float[]> _buffers = [];
    private readonly Dictionary<(int Batch, int Kind), float[]> _stepBuffers = [];
    private readonly string _input;
    private readonly object _gate = new();

    private OnnxLayerGradientModel(ModelProto cut, string input, string layer, int size, OnnxLayerModelOptions options)
    {
        _input = input;
        Layer = layer;
        _options = options;
        InputHeight = InputWidth = size;
        var shape = ProbeShape(cut, input, layer, size, options.Session);
        if (shape.Length == 3)
        {
            var tokens = options.Tokens ?? TokenLayout.Default;
            int side = tokens.GridSide(shape);
            if (side == 0)
                throw new ArgumentException($"Layer '{layer}' has shape [{string.Join(", ", shape)}], which is not a token layer of the layout " +
                    $"{(tokens.ChannelsFirst ? "[N, C, T]" : "[N, T, C]")} with {tokens.ClassTokens} class and {tokens.RegisterTokens} register tokens before a square patch grid; " +
                    "set OnnxLayerModelOptions.Tokens to the model's layout or pick another layer.", nameof(layer));
            Tokens = tokens;
            LayerChannels = (int)(tokens.ChannelsFirst ? shape[1] : shape[2]);
            LayerHeight = LayerWidth = side;
            if (!tokens.ChannelsFirst)
                cut = ChannelsFirst(cut, layer, LayerChannels, tokens.PrefixTokens + side * side);
        }
        else if (shape.Length == 4)
        {
            LayerChannels = (int)shape[1];
            LayerHeight = (int)shape[2];
            LayerWidth = (int)shape[3];
        }
        else
        {
            throw new ArgumentException($"Layer '{layer}' has shape [{string.Join(", ", shape)}]; pick a convolutional layer [N, C, H, W] or a vision transformer's token layer [N, T, C].", nameof(layer));
        }
        _cut = cut;
        _output = cut.Graph.Output[0].Name;
        _forward = OnnxSessionFactory.Create(cut, options.Session);
    }

    private static long[] ProbeShape(ModelProto cut, string input, string layer, int size, OnnxSessionOptions? session)
    {
        using var probeSession = OnnxSessionFactory.Create(cut, session);
        var probe = new float[3 * size * size];
        using var x = OrtValue.CreateTensorValueFromMemory(probe, [1, 3, size, size]);
        // A size the network does not take (a ViT's position embeddings) fails here; the caller may try another size,
        // so the failure is an exception, not a line in the log.
        using var ro = new RunOptions { LogSeverityLevel = OrtLoggingLevel.ORT_LOGGING_LEVEL_FATAL };
        using var result = probeSession.Run(ro, [input], [x], [layer]);
        return result.First().GetTensorTypeAndShape().Shape;
    }

    // Appends a transpose [N, T, C] -> [N, C, T] and makes it the cut's only output.
    private static ModelProto ChannelsFirst(ModelProto cut, string layer, int channels, int tokens)
    {
        var m = cut.Clone();
        var b = new OnnxGraphBuilder(m.Graph, "tokens__");
        string output = layer + ChannelsFirstSuffix;
        b.NodeWithOutputs("Transpose", [layer], [output], OnnxAttributes.Ints("perm", 0, 2, 1));
        m.Graph.Output.Clear();
        b.Output(output, "batch", channels, tokens);
        return m;
    }

    /// <summary>The layer's tensor name.</summary>
    public string Layer { get; }

    /// <inheritdoc/>
    public int InputHeight { get; }

    /// <inheritdoc/>
    public int InputWidth { get; }

    /// <inheritdoc/>
    public int LayerChannels { get; }

    /// <inheritdoc/>
    public int LayerHeight { get; }

    /// <inheritdoc/>
    public int LayerWidth { get; }

    /// <inheritdoc/>
    public int MaxBatchSize => _options.MaxBatchSize;

    /// <summary>
    /// The layout of a token layer, whose activations this model presents as <c>[N, C, T]</c> (class and register
    /// tokens first, then the <see cref="LayerHeight"/> x <see cref="LayerWidth"/> patch grid in row-major order);
    /// null for a convolutional layer <c>[N, C, H, W]</c>.
    /// </summary>
    public TokenLayout? Tokens { get; }

    /// <summary>Loads a model file and cuts it at <paramref name="layer"/>.</summary>
    /// <param name="path">The .onnx file.</param>
    /// <param name="layer">A tensor name or a friendly layer name (e.g. <c>inception4c</c>).</param>
    /// <param name="options">Settings; null for the defaults.</param>
    public static OnnxLayerGradientModel Load(string path, string layer, OnnxLayerModelOptions? options = null)
    {
        if (!File.Exists(path))
            throw new FileNotFoundException($"The ONNX model '{path}' does not exist.", path);
        ModelProto model;
        try
        {
            model = OnnxModelIO.Load(path);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            throw new InvalidDataException($"'{path}' could not be read as an ONNX model: {e.Message}", e);
        }
        return Create(model, layer, options);
    }

    /// <summary>Cuts a model at <paramref name="layer"/> and prepares its sessions.</summary>
    /// <param name="model">The model (image input <c>[N, 3, H, W]</c>); not modified.</param>
    /// <param name="layer">A tensor name or a friendly layer name (e.g. <c>inception4c</c>).</param>
    /// <param name="options">Settings; null for the defaults.</param>
    public static OnnxLayerGradientModel Create(ModelProto model, string layer, OnnxLayerModelOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentException.ThrowIfNullOrEmpty(layer);
        options ??= new OnnxLayerModelOptions();
        if (options.MaxBatchSize < 1)
            throw new ArgumentOutOfRangeException(nameof(options), "MaxBatchSize must be at least 1.");
        var m = OnnxGraphSurgery.MakeBatchDynamic(model);
        var inputs = OnnxGraphSurgery.RealInputs(m.Graph).ToList();
        if (inputs.Count != 1)
            throw new ArgumentException($"The model must have one image input; it has {inputs.Count} ({string.Join(", ", inputs)}).", nameof(model));
        var inputInfo = m.Graph.Input.First(i => i.Name == inputs[0]);
        long[]? dims = OnnxValueInfo.Dims(inputInfo);
        if (dims is not { Length: 4 } || (dims[1] > 0 && dims[1] != 3))
            throw new ArgumentException($"The model input '{inputs[0]}' must be an RGB image batch [N, 3, H, W].", nameof(model));
        int size = options.InputSize ?? (dims[2] > 0 && dims[2] == dims[3] ? (int)dims[2]
            : throw new ArgumentException($"The model input '{inputs[0]}' has no fixed square size; set InputSize.", nameof(options)));
        if (size < 8)
            throw new ArgumentOutOfRangeException(nameof(options), $"InputSize {size} is too small.");
        SetSpatialSize(inputInfo, size);

        string tensor = ResolveLayer(m, inputs[0], layer, size, options.Session);
        var cut = OnnxGraphSurgery.MakeBatchDynamic(OnnxGraphSurgery.CutInputToLayer(m, tensor));
        foreach (var i in cut.Graph.Input.Where(i => i.Name == inputs[0]))
            SetSpatialSize(i, size);
        foreach (var o in cut.Graph.Output)
        {
            var shape = o.Type?.TensorType?.Shape;
            if (shape is { Dim.Count: 4 })
                for (int d = 2; d < 4; d++)
                    shape.Dim[d] = new TensorShapeProto.Types.Dimension { DimParam = d == 2 ? "layer_height" : "layer_width" };
        }
        return new OnnxLayerGradientModel(cut, inputs[0], tensor, size, options);
    }

    private static void SetSpatialSize(ValueInfoProto info, int size)
    {
        var shape = info.Type.TensorType.Shape;
        shape.Dim[2] = new TensorShapeProto.Types.Dimension { DimValue = size };
        shape.Dim[3] = new TensorShapeProto.Types.Dimension { DimValue = size };
    }

    private static string ResolveLayer(ModelProto model, string input, string layer, int size, OnnxSessionOptions? session)
    {
        if (model.Graph.Node.Any(n => n.Output.Contains(layer)))
            return layer;
        var probe = OnnxLayers.Probe(model, new Dictionary<string, long[]> { [input] = [1, 3, size, size] }, session);
        return OnnxLayers.Resolve(probe, layer).Name;
    }

    /// <inheritdoc/>
    public void Forward(ReadOnlySpan<float> images, int batch, Span<float> layer)
    {
        lock (_gate)
        {
            var x = Normalized(images, batch);
            using var xv = OrtValue.CreateTensorValueFromMemory(x, [batch, 3, InputHeight, InputWidth]);
            using var lv = LayerOutput(batch, out var layerBuffer);
            using var ro = new RunOptions();
            _forward.Run(ro, [_input], [xv], [_output], [lv]);
            layerBuffer.AsSpan(0, batch * LayerSize).CopyTo(layer);
        }
    }

    /// <inheritdoc/>
    public void Backward(ReadOnlySpan<float> images, int batch, ReadOnlySpan<float> layerSeed, Span<float> layer, Span<float> imageGradient)
    {
        lock (_gate)
        {
            _vjp ??= OnnxSessionFactory.Create(GradientGraphBuilder.BuildVjp(_cut, VjpSettings()), _options.Session);
            var x = Normalized(images, batch);
            var seed = Buffer(batch, 1);
            // The graph takes the ascent direction (minus the loss seed), as lucid's ReLU redirection expects.
            System.Numerics.Tensors.TensorPrimitives.Negate(layerSeed[..(batch * LayerSize)], seed);
            using var xv = OrtValue.CreateTensorValueFromMemory(x, [batch, 3, InputHeight, InputWidth]);
            using var sv = OrtValue.CreateTensorValueFromMemory(seed, LayerShape(batch));
            using var lv = LayerOutput(batch, out var layerBuffer);
            using var gv = GradientOutput(batch, out var gradientBuffer);
            using var ro = new RunOptions();
            _vjp.Run(ro, [_input, SeedName], [xv, sv], [_output, GradientName], [lv, gv]);
            layerBuffer.AsSpan(0, batch * LayerSize).CopyTo(layer);
            GradientOut(gradientBuffer, batch, imageGradient);
        }
    }

    /// <inheritdoc/>
    public bool SupportsObjective(Objectives.ActivationObjective objective) => ObjectiveSeedGraph.Supports(objective);

    /// <inheritdoc/>
    public void BackwardObjective(Objectives.ActivationObjective objective, int position, ReadOnlySpan<float> images, int batch,
        ReadOnlySpan<float> preparedTargets, Span<float> layer, Span<float> imageGradient)
    {
        lock (_gate)
        {
            if (position < 0 || position >= LayerPositions)
                throw new ArgumentOutOfRangeException(nameof(position), position, $"Layer '{Layer}' has {LayerPositions} positions.");
            string key = ObjectiveSeedGraph.Key(objective, position);
            if (!_objectiveSessions.TryGetValue(key, out var session))
            {
                var vjp = GradientGraphBuilder.BuildVjp(_cut, VjpSettings());
                ObjectiveSeedGraph.ReplaceSeed(vjp, _output, SeedName, objective, position, Tokens is null ? [LayerHeight, LayerWidth] : [LayerPositions]);
                _objectiveSessions[key] = session = OnnxSessionFactory.Create(vjp, _options.Session);
            }
            var xin = Normalized(images, batch);
            var targets = Buffer(batch, 2);
            preparedTargets[..(batch * LayerChannels)].CopyTo(targets);
            using var xv = OrtValue.CreateTensorValueFromMemory(xin, [batch, 3, InputHeight, InputWidth]);
            using var tv = OrtValue.CreateTensorValueFromMemory(targets, [batch, LayerChannels]);
            using var lv = LayerOutput(batch, out var layerBuffer);
            using var gv = GradientOutput(batch, out var gradientBuffer);
            using var ro = new RunOptions();
            session.Run(ro, [_input, ObjectiveSeedGraph.TargetsName], [xv, tv], [_output, GradientName], [lv, gv]);
            layerBuffer.AsSpan(0, batch * LayerSize).CopyTo(layer);
            GradientOut(gradientBuffer, batch, imageGradient);
        }
    }

    /// <summary>
    /// One optimisation step of a batch of icons in one run of the step graph (<see cref="IconStepGraph"/>, built and
    /// cached on first use): the layer and d(loss)/d(spectrum) (minus the graph's ascent gradient).
    /// </summary>
    internal void Step(IconStepGraph step, int batch, ReadOnlySpan<float> spectrum, ReadOnlySpan<float> affine, ReadOnlySpan<float> clamp,
        ReadOnlySpan<float> window, ReadOnlySpan<float> preparedTargets, Span<float> layer, Span<float> spectrumGradient)
    {
        lock (_gate)
        {
            if (!_objectiveSessions.TryGetValue(step.Key, out var session))
            {
                var graph = step.Build(_cut, _input, Layer, _options.Normalization, _options.ReluRedirection, InputHeight, InputWidth, LayerHeight, LayerWidth);
                _objectiveSessions[step.Key] = session = OnnxSessionFactory.Create(graph, _options.Session);
            }
            int p = step.ParameterCount;
            OrtValue In(ReadOnlySpan<float> values, int kind, int per, params long[] shape)
            {
                var buffer = StepBuffer(batch, kind, per);
                values[..(batch * per)].CopyTo(buffer);
                return OrtValue.CreateTensorValueFromMemory(buffer, [batch, .. shape]);
            }
            using var sv = In(spectrum, 0, p, p);
            using var av = In(affine, 1, Transforms.StepTransformPlan.AffineSize, 2, 2, 3);
            using var cv = In(clamp, 2, Transforms.StepTransformPlan.ClampSize, 2);
            using var wv = In(window, 3, Transforms.StepTransformPlan.WindowSize, 2, 2);
            using var tv = In(preparedTargets, 4, LayerChannels, LayerChannels);
            using var lv = LayerOutput(batch, out var layerBuffer);
            var gradient = StepBuffer(batch, 5, p);
            using var gv = OrtValue.CreateTensorValueFromMemory(gradient, [batch, p]);
            using var ro = new RunOptions();
            session.Run(ro, [IconStepGraph.SpectrumName, IconStepGraph.AffineName, IconStepGraph.ClampName, IconStepGraph.WindowName, ObjectiveSeedGraph.TargetsName],
                [sv, av, cv, wv, tv], [Layer, IconStepGraph.GradientName], [lv, gv]);
            layerBuffer.AsSpan(0, batch * LayerSize).CopyTo(layer);
            // Back from the ascent convention of the graph to the gradient of the loss.
            System.Numerics.Tensors.TensorPrimitives.Negate(gradient.AsSpan(0, batch * p), spectrumGradient[..(batch * p)]);
        }
    }

    /// <summary>Whether this model's sessions run on CUDA.</summary>
    internal bool UsesCuda => _options.Session?.UseCuda == true;

    // Exact-size step buffers per batch size: 0 spectrum, 1 affine, 2 clamp, 3 window, 4 targets, 5 gradient.
    private float[] StepBuffer(int batch, int kind, int per)
    {
        if (!_stepBuffers.TryGetValue((batch, kind), out var buffer) || buffer.Length != batch * per)
            _stepBuffers[(batch, kind)] = buffer = new float[batch * per];
        return buffer;
    }

    private VjpOptions VjpSettings() => new()
    {
        Of = _output,
        WithRespectTo = _input,
        SeedName = SeedName,
        GradientName = GradientName,
        ReluRedirection = _options.ReluRedirection,
    };

    // Positions per channel: H x W, or the T tokens of a token layer.
    private int LayerPositions => LayerHeight * LayerWidth + (Tokens?.PrefixTokens ?? 0);

    private int LayerSize => LayerChannels * LayerPositions;

    private long[] LayerShape(int batch) => Tokens is null ? [batch, LayerChannels, LayerHeight, LayerWidth] : [batch, LayerChannels, LayerPositions];

    private float[] Normalized(ReadOnlySpan<float> images, int batch)
    {
        int n = 3 * InputHeight * InputWidth;
        if (batch < 1 || images.Length < batch * n)
            throw new ArgumentException($"Expected {batch} images of 3x{InputHeight}x{InputWidth}; got {images.Length} values.", nameof(images));
        var x = Buffer(batch, 0);
        _options.Normalization.Forward(images, x, batch, InputHeight, InputWidth);
        return x;
    }

    // Outputs written by ONNX Runtime straight into buffers kept per batch size (no allocation per run).
    private OrtValue LayerOutput(int batch, out float[] buffer)
    {
        buffer = Buffer(batch, 3);
        return OrtValue.CreateTensorValueFromMemory(buffer, LayerShape(batch));
    }

    private OrtValue GradientOutput(int batch, out float[] buffer)
    {
        buffer = Buffer(batch, 4);
        return OrtValue.CreateTensorValueFromMemory(buffer, [batch, 3, InputHeight, InputWidth]);
    }

    private void GradientOut(float[] g, int batch, Span<float> imageGradient)
    {
        int n = batch * 3 * InputHeight * InputWidth;
        _options.Normalization.Adjoint(g, imageGradient, batch, InputHeight, InputWidth);
        // Back from the ascent convention of the graph to the gradient of the loss.
        System.Numerics.Tensors.TensorPrimitives.Negate(imageGradient[..n], imageGradient[..n]);
    }

    // Exact-size buffers per batch size: 0 = network input, 1 = seed, 2 = targets, 3 = layer output, 4 = gradient output.
    private float[] Buffer(int batch, int kind)
    {
        int size = kind switch
        {
            0 or 4 => batch * 3 * InputHeight * InputWidth,
            1 or 3 => batch * LayerSize,
            _ => batch * LayerChannels,
        };
        if (!_buffers.TryGetValue((batch, kind), out var buffer))
            _buffers[(batch, kind)] = buffer = new float[size];
        return buffer;
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        _forward.Dispose();
        _vjp?.Dispose();
        foreach (var s in _objectiveSessions.Values)
            s.Dispose();
        _objectiveSessions.Clear();
    }
}
