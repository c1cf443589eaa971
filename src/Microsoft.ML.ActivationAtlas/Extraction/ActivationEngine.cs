using Microsoft.ML.ActivationAtlas.Onnx;
using Microsoft.ML.ActivationAtlas.Onnx.Protobuf;
using Microsoft.ML.OnnxRuntime;

namespace Microsoft.ML.ActivationAtlas.Extraction;

/// <summary>
/// The compiled extraction: the network cut at the requested layers (with its preprocessing model chained in
/// front), one ONNX Runtime session, the pixel converter and the sampler. Thread-safe; shared by all cursors.
/// </summary>
internal sealed class ActivationEngine : IDisposable
{
    private readonly InferenceSession _session;
    private readonly InferenceSession? _preSession;
    private readonly string _inputName;
    private readonly string? _preInputName;
    private readonly string? _preOutputName;
    private readonly bool _planar;
    private readonly string _networkInputName;
    private readonly string[] _outputNames;

    public ActivationEngine(ActivationModel model, IReadOnlyList<string> layers, ImagePreprocessing preprocessing,
        int imageWidth, int imageHeight, ActivationSampling sampling, int seed, int margin, OnnxSessionOptions sessionOptions,
        TokenLayout? tokens = null, long firstRow = 0)
    {
        if (layers.Count == 0)
            throw new ArgumentException("Name at least one layer to extract.", nameof(layers));
        var net = model.Network;
        var pre = model.PreprocessingModel;
        _networkInputName = SingleInput(net, model.Description);
        var fed = pre ?? net;
        _inputName = SingleInput(fed, pre is null ? model.Description : "the preprocessing model of " + model.Description);
        _planar = preprocessing.Planar;

        // The image size: the fed input's declared spatial size, or the options'.
        var declared = OnnxValueInfo.Dims(fed.Graph.Input.First(i => i.Name == _inputName))
            ?? throw new ArgumentException($"Input '{_inputName}' of {model.Description} declares no shape; it must be a 4-D image tensor.");
        if (declared.Length != 4)
            throw new ArgumentException($"Input '{_inputName}' of {model.Description} is {declared.Length}-D; an image input must be 4-D ([N, 3, H, W] or, with Planar = false, [N, H, W, 3]).");
        long channels = preprocessing.Planar ? declared[1] : declared[3];
        if (channels is not 3 and not -1)
            throw new ArgumentException($"Input '{_inputName}' of {model.Description} has {channels} channels in the {(preprocessing.Planar ? "planar [N, C, H, W]" : "interleaved [N, H, W, C]")} layout; 3 (color) are needed. Check ImagePreprocessing.Planar.");
        long h = preprocessing.Planar ? declared[2] : declared[1];
        long w = preprocessing.Planar ? declared[3] : declared[2];
        if (imageHeight > 0 && h > 0 && imageHeight != h || imageWidth > 0 && w > 0 && imageWidth != w)
            throw new ArgumentException($"The network takes {w}x{h} images; ImageWidth/ImageHeight ({imageWidth}x{imageHeight}) disagree.");
        h = h > 0 ? h : imageHeight;
        w = w > 0 ? w : imageWidth;
        if (h <= 0 || w <= 0)
            throw new ArgumentException($"Input '{_inputName}' of {model.Description} has a symbolic image size; set ImageWidth and ImageHeight.");
        Converter = new PixelConverter(preprocessing, (int)h, (int)w);
        long[] fedShape = preprocessing.Planar ? [1, 3, h, w] : [1, h, w, 3];

        // One probe run of the network gives every tensor's shape; resolve the requested layers.
        var netDeclared = OnnxValueInfo.Dims(net.Graph.Input.First(i => i.Name == _networkInputName));
        Dictionary<string, long[]>? probeShapes = netDeclared is not null && netDeclared.Skip(1).All(d => d > 0)
            ? null : new() { [_networkInputName] = fedShape };
        var all = OnnxLayers.Probe(net, probeShapes, tokens: tokens);
        Layers = layers.Select(l => OnnxLayers.Resolve(all, l, tokens)).ToArray();
        if (Layers.Select(l => l.Name).Distinct().Count() != Layers.Length)
            throw new ArgumentException($"A layer is requested twice: {string.Join(", ", layers)}.", nameof(layers));
        _outputNames = Layers.Select(l => l.Name).ToArray();

        // Cut the network at the layers, make the batch symbolic and chain the preprocessing model in front.
        var shapes = Layers.ToDictionary(l => l.Name, l => l.Shape);
        var cut = OnnxGraphSurgery.Extract(OnnxGraphSurgery.MakeBatchDynamic(net), [_networkInputName], _outputNames, shapes);
        ModelProto main = cut;
        if (pre is not null)
        {
            var dynamicPre = OnnxGraphSurgery.MakeBatchDynamic(pre);
            try
            {
                main = OnnxGraphSurgery.Chain(dynamicPre, cut, _networkInputName);
            }
            catch (NotSupportedException)
            {
                // Different opset versions: run the preprocessing model as its own session.
                _preSession = OnnxSessionFactory.Create(dynamicPre, sessionOptions);
                _preInputName = _inputName;
                _preOutputName = dynamicPre.Graph.Output[0].Name;
                _inputName = _networkInputName;
            }
        }
        _session = OnnxSessionFactory.Create(OnnxModelIO.ToBytes(main), sessionOptions, out string provider);
        ExecutionProvider = provider;
        Sampler = new ActivationSampler(sampling, seed, margin, Layers[0], firstRow);
    }

    /// <summary>
    /// The same compiled extraction for rows numbered from <paramref name="firstRow"/>: it shares the source's sessions
    /// (which it does not dispose) and has a sampler of its own.
    /// </summary>
    private ActivationEngine(ActivationEngine source, ActivationSampling sampling, int seed, int margin, long firstRow)
    {
        _session = source._session;
        _preSession = source._preSession;
        _inputName = source._inputName;
        _preInputName = source._preInputName;
        _preOutputName = source._preOutputName;
        _planar = source._planar;
        _networkInputName = source._networkInputName;
        _outputNames = source._outputNames;
        Layers = source.Layers;
        Converter = source.Converter;
        ExecutionProvider = source.ExecutionProvider;
        Sampler = new ActivationSampler(sampling, seed, margin, Layers[0], firstRow);
        _sharesSessions = true;
    }

    private readonly bool _sharesSessions;

    /// <summary>This extraction for rows numbered from <paramref name="firstRow"/>, sharing its sessions.</summary>
    public ActivationEngine StartingAtRow(ActivationSampling sampling, int seed, int margin, long firstRow) =>
        new(this, sampling, seed, margin, firstRow);

    /// <summary>The resolved layers, in request order.</summary>
    public OnnxLayerInfo[] Layers { get; }

    /// <summary>Converts images into batch slots.</summary>
    public PixelConverter Converter { get; }

    /// <summary>Chooses positions and gathers vectors.</summary>
    public ActivationSampler Sampler { get; }

    /// <summary><c>CPU</c> or <c>CUDA</c>.</summary>
    public string ExecutionProvider { get; }

    /// <summary>Runs the network on the first <paramref name="count"/> images of <paramref name="batch"/>; returns one output per layer.</summary>
    public IDisposableReadOnlyCollection<OrtValue> Run(float[] batch, int count)
    {
        long[] shape = InputShape(count);
        using var runOptions = new RunOptions();
        using var input = OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance,
            new Memory<float>(batch, 0, count * Converter.Length), shape);
        if (_preSession is null)
            return _session.Run(runOptions, [_inputName], [input], _outputNames);
        using var pre = _preSession.Run(runOptions, [_preInputName!], [input], [_preOutputName!]);
        return _session.Run(runOptions, [_inputName], [pre[0]], _outputNames);
    }

    private long[] InputShape(int count) => _planar
        ? [count, 3, Converter.Height, Converter.Width]
        : [count, Converter.Height, Converter.Width, 3];

    public void Dispose()
    {
        if (_sharesSessions)
            return;
        _session.Dispose();
        _preSession?.Dispose();
    }

    private static string SingleInput(ModelProto model, string what)
    {
        var inputs = OnnxGraphSurgery.RealInputs(model.Graph).ToList();
        if (inputs.Count != 1)
            throw new ArgumentException($"{what} has {inputs.Count} inputs ({string.Join(", ", inputs)}); an image network with exactly one input is needed.");
        return inputs[0];
    }
}
