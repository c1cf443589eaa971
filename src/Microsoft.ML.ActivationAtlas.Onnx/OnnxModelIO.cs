using Google.Protobuf;
using Microsoft.ML.ActivationAtlas.Onnx.Protobuf;

namespace Microsoft.ML.ActivationAtlas.Onnx;

/// <summary>
/// Reads and writes ONNX models (<see cref="ModelProto"/>). Weights stored as <c>raw_data</c>, as typed fields
/// (<c>float_data</c>, <c>int64_data</c>, ...) or in external data files are all supported.
/// </summary>
public static class OnnxModelIO
{
    /// <summary>
    /// Loads a model file. When <paramref name="inlineExternalData"/> is true (the default), tensors whose bytes
    /// live in external data files (resolved relative to the model's folder) are read into <c>raw_data</c>, so
    /// the returned model is self-contained.
    /// </summary>
    /// <param name="path">The <c>.onnx</c> file.</param>
    /// <param name="inlineExternalData">Whether to read external tensor data into the model.</param>
    /// <exception cref="FileNotFoundException">The file (or an external data file it names) does not exist.</exception>
    /// <exception cref="InvalidDataException">The file is not a valid ONNX model.</exception>
    public static ModelProto Load(string path, bool inlineExternalData = true)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (!File.Exists(path))
            throw new FileNotFoundException($"ONNX model file '{path}' does not exist.", path);
        ModelProto model;
        using (var stream = File.OpenRead(path))
            model = Parse(stream, path);
        if (inlineExternalData)
            OnnxExternalData.Inline(model, Path.GetDirectoryName(Path.GetFullPath(path))!);
        return model;
    }

    /// <summary>Parses a serialized model. External data, if any, is resolved against <paramref name="baseDirectory"/>.</summary>
    /// <param name="bytes">The serialized <see cref="ModelProto"/>.</param>
    /// <param name="baseDirectory">The folder external data locations are relative to; null to leave external references as they are.</param>
    public static ModelProto Parse(ReadOnlySpan<byte> bytes, string? baseDirectory = null)
    {
        ModelProto model;
        try
        {
            model = ModelProto.Parser.ParseFrom(bytes);
        }
        catch (InvalidProtocolBufferException e)
        {
            throw new InvalidDataException($"The bytes are not a valid ONNX model: {e.Message}", e);
        }
        Validate(model, "the model bytes");
        if (baseDirectory is not null)
            OnnxExternalData.Inline(model, baseDirectory);
        return model;
    }

    /// <summary>Serializes a model to bytes (what ONNX Runtime's session constructor accepts).</summary>
    /// <param name="model">The model.</param>
    public static byte[] ToBytes(ModelProto model)
    {
        ArgumentNullException.ThrowIfNull(model);
        return model.ToByteArray();
    }

    /// <summary>Writes a model to <paramref name="path"/> (through a temporary file renamed when complete).</summary>
    /// <param name="model">The model; tensors that reference external data keep their references.</param>
    /// <param name="path">The destination file.</param>
    public static void Save(ModelProto model, string path)
    {
        ArgumentNullException.ThrowIfNull(model);
        AtomicFile.Write(path, s => model.WriteTo(s));
    }

    /// <summary>
    /// Writes a model with the data of every initializer of at least <paramref name="sizeThreshold"/> bytes moved
    /// into one external data file beside it (the layout ONNX uses for models over 2 GB). The passed model is not modified.
    /// </summary>
    /// <param name="model">The model (self-contained).</param>
    /// <param name="path">The destination <c>.onnx</c> file.</param>
    /// <param name="dataFileName">The external data file's name, relative to the model's folder.</param>
    /// <param name="sizeThreshold">Smaller tensors stay inside the model.</param>
    public static void SaveWithExternalData(ModelProto model, string path, string dataFileName, int sizeThreshold = 1024)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentException.ThrowIfNullOrEmpty(dataFileName);
        var copy = model.Clone();
        string dir = Path.GetDirectoryName(Path.GetFullPath(path))!;
        string dataPath = Path.Combine(dir, dataFileName);
        AtomicFile.Write(dataPath, data =>
        {
            foreach (var t in copy.Graph.Initializer)
            {
                byte[] bytes = OnnxTensors.ToRawBytes(t);
                if (bytes.Length < sizeThreshold)
                    continue;
                long offset = data.Position;
                data.Write(bytes);
                OnnxTensors.ClearData(t);
                t.DataLocation = TensorProto.Types.DataLocation.External;
                t.ExternalData.Add(new StringStringEntryProto { Key = "location", Value = dataFileName });
                t.ExternalData.Add(new StringStringEntryProto { Key = "offset", Value = offset.ToString(System.Globalization.CultureInfo.InvariantCulture) });
                t.ExternalData.Add(new StringStringEntryProto { Key = "length", Value = bytes.Length.ToString(System.Globalization.CultureInfo.InvariantCulture) });
            }
        });
        Save(copy, path);
    }

    private static ModelProto Parse(Stream stream, string path)
    {
        ModelProto model;
        try
        {
            model = ModelProto.Parser.ParseFrom(stream);
        }
        catch (InvalidProtocolBufferException e)
        {
            throw new InvalidDataException($"'{path}' is not a valid ONNX model: {e.Message}", e);
        }
        Validate(model, $"'{path}'");
        return model;
    }

    private static void Validate(ModelProto model, string what)
    {
        if (model.Graph is null || (model.Graph.Node.Count == 0 && model.Graph.Output.Count == 0))
            throw new InvalidDataException($"{what} is not a valid ONNX model: it has no graph.");
    }
}
