using Microsoft.ML.ActivationAtlas.Onnx;
using Microsoft.ML.ActivationAtlas.Persistence;
using Microsoft.ML.ActivationAtlas.Onnx.Protobuf;

namespace Microsoft.ML.ActivationAtlas.Extraction;

/// <summary>
/// An ONNX vision network to extract activations from, with the preprocessing it expects: an optional ONNX
/// preprocessing model run before it and the pixel conversion (<see cref="ImagePreprocessing"/>) that feeds it.
/// Create one with <see cref="FromFile"/>, <see cref="FromBytes"/> or take <see cref="PretrainedModels.ResNet18"/>.
/// </summary>
public sealed class ActivationModel
{
    private readonly Lazy<ModelProto> _network;
    private readonly Lazy<ModelProto?> _preprocessingModel;

    private ActivationModel(string description, Func<ModelProto> network, Func<ModelProto?> preprocessingModel,
        ImagePreprocessing preprocessing, string? builtInName, string? networkPath, string? preprocessingModelPath)
    {
        Description = description;
        _network = new Lazy<ModelProto>(network);
        _preprocessingModel = new Lazy<ModelProto?>(preprocessingModel);
        Preprocessing = preprocessing;
        BuiltInName = builtInName;
        NetworkPath = networkPath;
        PreprocessingModelPath = preprocessingModelPath;
    }

    /// <summary>Where the model comes from, for messages (a file path or the built-in model's name).</summary>
    public string Description { get; }

    /// <summary>The pixel conversion feeding the network (or its preprocessing model).</summary>
    public ImagePreprocessing Preprocessing { get; }

    /// <summary>The network's file, when loaded from one.</summary>
    public string? NetworkPath { get; }

    /// <summary>The preprocessing model's file, when there is one.</summary>
    public string? PreprocessingModelPath { get; }

    /// <summary>The name of a built-in model (e.g. <c>resnet18</c>), else null.</summary>
    public string? BuiltInName { get; }

    /// <summary>The network (external data inlined).</summary>
    public ModelProto Network => _network.Value;

    /// <summary>The preprocessing model run before the network, or null.</summary>
    public ModelProto? PreprocessingModel => _preprocessingModel.Value;

    /// <summary>A network from an <c>.onnx</c> file (external data resolved relative to its folder).</summary>
    /// <param name="path">The network.</param>
    /// <param name="preprocessing">The pixel conversion it expects; default <see cref="ImagePreprocessing.UnitRange"/>.</param>
    /// <param name="preprocessingModelPath">An optional ONNX model applied to the converted pixels before the network (one input, one output).</param>
    public static ActivationModel FromFile(string path, ImagePreprocessing? preprocessing = null, string? preprocessingModelPath = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (!File.Exists(path))
            throw new FileNotFoundException($"ONNX model file '{path}' does not exist.", path);
        if (preprocessingModelPath is not null && !File.Exists(preprocessingModelPath))
            throw new FileNotFoundException($"Preprocessing model file '{preprocessingModelPath}' does not exist.", preprocessingModelPath);
        return new ActivationModel(path, () => OnnxModelIO.Load(path),
            () => preprocessingModelPath is null ? null : OnnxModelIO.Load(preprocessingModelPath),
            preprocessing?.Clone() ?? ImagePreprocessing.UnitRange, null, Path.GetFullPath(path),
            preprocessingModelPath is null ? null : Path.GetFullPath(preprocessingModelPath));
    }

    /// <summary>A network from serialized bytes (self-contained: no external data).</summary>
    /// <param name="modelBytes">The serialized network.</param>
    /// <param name="preprocessing">The pixel conversion it expects; default <see cref="ImagePreprocessing.UnitRange"/>.</param>
    /// <param name="preprocessingModelBytes">An optional serialized preprocessing model.</param>
    public static ActivationModel FromBytes(byte[] modelBytes, ImagePreprocessing? preprocessing = null, byte[]? preprocessingModelBytes = null)
    {
        ArgumentNullException.ThrowIfNull(modelBytes);
        var net = OnnxModelIO.Parse(modelBytes);
        var pre = preprocessingModelBytes is null ? null : OnnxModelIO.Parse(preprocessingModelBytes);
        return new ActivationModel("model bytes", () => net, () => pre, preprocessing?.Clone() ?? ImagePreprocessing.UnitRange, null, null, null);
    }

    internal static ActivationModel BuiltIn(string name, string networkPath, string preprocessingModelPath, ImagePreprocessing preprocessing,
        Lazy<ModelProto> network, Lazy<ModelProto> preprocessingModel) =>
        new(name, () => network.Value, () => preprocessingModel.Value, preprocessing, name, networkPath, preprocessingModelPath);

    /// <inheritdoc/>
    public override string ToString() => Description;

    /// <summary>
    /// Writes the network (and its preprocessing model) into a saved pipeline. A built-in model is stored by name
    /// only, in the stage's own settings, and is not written here.
    /// </summary>
    internal void WriteState(AtlasStateWriter writer)
    {
        if (BuiltInName is not null)
            return;
        writer.WriteBytes("network.onnx", OnnxModelIO.ToBytes(Network));
        if (PreprocessingModel is { } pre)
            writer.WriteBytes("preprocessing.onnx", OnnxModelIO.ToBytes(pre));
    }

    /// <summary>Reads back a model written by <see cref="WriteState"/>, or finds the named built-in model.</summary>
    internal static ActivationModel ReadState(AtlasStateReader reader, string? builtInName, ImagePreprocessing? preprocessing) =>
        builtInName is not null
            ? PretrainedModels.ByName(builtInName) ?? throw new InvalidDataException($"{reader.ModelPath}: unknown built-in model '{builtInName}'.")
            : FromBytes(reader.ReadBytes("network.onnx"), preprocessing,
                reader.Contains("preprocessing.onnx") ? reader.ReadBytes("preprocessing.onnx") : null);
}
