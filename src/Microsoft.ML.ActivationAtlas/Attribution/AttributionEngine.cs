using Microsoft.ML.ActivationAtlas.Extraction;
using Microsoft.ML.ActivationAtlas.Gradients;
using Microsoft.ML.ActivationAtlas.Onnx;
using Microsoft.ML.OnnxRuntime;

namespace Microsoft.ML.ActivationAtlas.Attribution;

/// <summary>
/// Runs the attribution (tangent) graph of a classifier in batches: images and one position per image in,
/// h . d(logit_k)/d(h) for every class out.
/// </summary>
internal sealed class AttributionEngine : IDisposable
{
    private string _inputName;
    private string? _preInputName;
    private string? _preOutputName;

    public AttributionEngine(ActivationModel model, string layer, string? logits, OnnxSessionOptions sessionOptions, bool maxPoolRelaxation = false,
        TokenLayout? tokens = null)
    {
        var net = model.Network;
        var pre = model.PreprocessingModel;
        string netInput = OnnxGraphSurgery.RealInputs(net.Graph).Single();
        var fed = pre ?? net;
        _inputName = OnnxGraphSurgery.RealInputs(fed.Graph).Single();
        if (!model.Preprocessing.Planar)
            throw new NotSupportedException($"Attribution needs a planar [N, 3, H, W] image input; {model.Description} takes interleaved pixels.");
        var declared = OnnxValueInfo.Dims(fed.Graph.Input.First(i => i.Name == _inputName));
        if (declared is null || declared.Length != 4 || declared[2] <= 0 || declared[3] <= 0)
            throw new ArgumentException($"Input '{_inputName}' of {model.Description} must be a 4-D image tensor with a fixed size.");
        Converter = new PixelConverter(model.Preprocessing, (int)declared[2], (int)declared[3]);

        var probe = OnnxLayers.Probe(net, new Dictionary<string, long[]> { [netInput] = [1, 3, declared[2], declared[3]] }, tokens: tokens);
        Layer = OnnxLayers.Resolve(probe, layer, tokens);
        string logitsName = logits ?? net.Graph.Output[0].Name;
        var logitsInfo = probe.FirstOrDefault(t => t.Name == logitsName)
            ?? throw new ArgumentException($"The logits tensor '{logitsName}' is not a tensor of {model.Description}.");
        if (logitsInfo.Shape.Length != 2)
            throw new ArgumentException($"The logits tensor '{logitsName}' of {model.Description} is [{string.Join(", ", logitsInfo.Shape)}]; a classifier's logits are [N, K]. Attach a classifier head first (ClassifierHead.Attach).");
        LogitsName = logitsName;
        ClassCount = (int)logitsInfo.Shape[1];

        _model = model;
        _maxPoolRelaxation = maxPoolRelaxation;
        _sessionOptions = sessionOptions;
        LinearHead = LinearSpatialMeanHead.Find(net, Layer, logitsName);
    }

    private readonly ActivationModel _model;
    private readonly bool _maxPoolRelaxation;
    private readonly OnnxSessionOptions _sessionOptions;
    private InferenceSession? _session;
    private InferenceSession? _preSession;

    /// <summary>The closed form when the classifier reads the layer only through a linear head on its spatial mean; else null.</summary>
    public LinearSpatialMeanHead? LinearHead { get; }

    private readonly object _gate = new();

    /// <summary>Builds the tangent graph and its session (once; the closed form needs neither).</summary>
    public void Compile() => Session();

    private InferenceSession Session()
    {
        lock (_gate)
            return _session ?? CreateSession();
    }

    private InferenceSession CreateSession()
    {
        var net = _model.Network;
        var pre = _model.PreprocessingModel;
        var graph = AttributionGraph.Build(OnnxGraphSurgery.MakeBatchDynamic(net), Layer.Name, LogitsName, maxPoolRelaxation: _maxPoolRelaxation);
        if (pre is not null)
        {
            _preSession = OnnxSessionFactory.Create(OnnxGraphSurgery.MakeBatchDynamic(pre), _sessionOptions);
            _preInputName = _inputName;
            _preOutputName = pre.Graph.Output[0].Name;
            _inputName = OnnxGraphSurgery.RealInputs(net.Graph).Single();
        }
        return _session = OnnxSessionFactory.Create(graph, _sessionOptions);
    }

    public PixelConverter Converter { get; }

    public OnnxLayerInfo Layer { get; }

    public string LogitsName { get; }

    public int ClassCount { get; }

    /// <summary>
    /// Attributions of <paramref name="count"/> images of <paramref name="pixels"/> (one slot of
    /// <see cref="PixelConverter.Length"/> each) at positions (y, x) into <paramref name="result"/> ([count, K]).
    /// On a token layer (y, x) is a patch of the patch grid, or (-2, -2) for the class token.
    /// </summary>
    public void Run(float[] pixels, ReadOnlySpan<int> positions, int count, Span<float> result)
    {
        var mask = Mask(positions, count, out long[] maskShape);
        var session = Session();
        using var runOptions = new RunOptions();
        using var input = OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance,
            new Memory<float>(pixels, 0, count * Converter.Length), [count, 3, Converter.Height, Converter.Width]);
        using var maskValue = OrtValue.CreateTensorValueFromMemory(mask, maskShape);
        string[] outputs = [AttributionGraph.AttributionName];
        if (_preSession is null)
        {
            using var r = session.Run(runOptions, [_inputName, AttributionGraph.MaskName], [input, maskValue], outputs);
            r[0].GetTensorDataAsSpan<float>().CopyTo(result);
            return;
        }
        using var pre = _preSession.Run(runOptions, [_preInputName!], [input], [_preOutputName!]);
        using var r2 = session.Run(runOptions, [_inputName, AttributionGraph.MaskName], [pre[0], maskValue], outputs);
        r2[0].GetTensorDataAsSpan<float>().CopyTo(result);
    }

    /// <summary>
    /// The attribution graph's mask: [count, 1, H, W] for a spatial layer; [count, T, 1] for a token layer [N, T, C]
    /// and [count, 1, T] for [N, C, T], with 1 at the patch token (or the class token for position (-2, -2)).
    /// </summary>
    private float[] Mask(ReadOnlySpan<int> positions, int count, out long[] shape)
    {
        int h = Layer.Height, w = Layer.Width;
        var tokens = Layer.Tokens;
        int cells = tokens is null ? h * w : Layer.TokenCount;
        var mask = new float[count * cells];
        for (int n = 0; n < count; n++)
        {
            int y = positions[2 * n], x = positions[2 * n + 1];
            if (tokens is not null && y == ActivationSampler.ClassTokenPosition && x == y && tokens.ClassTokens > 0)
            {
                mask[n * cells] = 1f;
                continue;
            }
            if (y < 0 || y >= h || x < 0 || x >= w)
                throw new ArgumentOutOfRangeException(nameof(positions), $"Position ({y}, {x}) is outside the {h}x{w} {(tokens is null ? "grid" : "patch grid")} of layer '{Layer.Name}'.");
            mask[n * cells + (tokens is null ? y * w + x : tokens.PrefixTokens + y * w + x)] = 1f;
        }
        shape = tokens is null ? [count, 1, h, w] : tokens.ChannelsFirst ? [count, 1, cells] : [count, cells, 1];
        return mask;
    }

    public void Dispose()
    {
        _session?.Dispose();
        _preSession?.Dispose();
    }
}
