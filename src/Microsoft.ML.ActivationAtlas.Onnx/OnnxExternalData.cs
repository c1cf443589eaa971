using System.Globalization;
using Microsoft.ML.ActivationAtlas.Onnx.Protobuf;

namespace Microsoft.ML.ActivationAtlas.Onnx;

/// <summary>Resolves tensors stored in external data files (ONNX <c>data_location = EXTERNAL</c>).</summary>
internal static class OnnxExternalData
{
    /// <summary>Reads every external tensor of the model (initializers, Constant nodes, sub-graphs) into <c>raw_data</c>.</summary>
    public static void Inline(ModelProto model, string baseDirectory)
    {
        if (model.Graph is not null)
            Inline(model.Graph, baseDirectory);
    }

    private static void Inline(GraphProto graph, string baseDirectory)
    {
        foreach (var t in graph.Initializer)
            InlineTensor(t, baseDirectory);
        foreach (var node in graph.Node)
        {
            foreach (var a in node.Attribute)
            {
                if (a.T is not null)
                    InlineTensor(a.T, baseDirectory);
                foreach (var t in a.Tensors)
                    InlineTensor(t, baseDirectory);
                if (a.G is not null)
                    Inline(a.G, baseDirectory);
                foreach (var g in a.Graphs)
                    Inline(g, baseDirectory);
            }
        }
    }

    private static void InlineTensor(TensorProto t, string baseDirectory)
    {
        if (t.DataLocation != TensorProto.Types.DataLocation.External)
            return;
        string? location = null;
        long offset = 0, length = -1;
        foreach (var kv in t.ExternalData)
        {
            switch (kv.Key)
            {
                case "location": location = kv.Value; break;
                case "offset": offset = long.Parse(kv.Value, CultureInfo.InvariantCulture); break;
                case "length": length = long.Parse(kv.Value, CultureInfo.InvariantCulture); break;
            }
        }
        if (string.IsNullOrEmpty(location))
            throw new InvalidDataException($"Tensor '{t.Name}' is stored externally but names no 'location'.");
        if (Path.IsPathRooted(location) || location.Split('/', '\\').Contains(".."))
            throw new InvalidDataException($"Tensor '{t.Name}': external data location '{location}' must be a path inside the model's folder.");
        string file = Path.Combine(baseDirectory, location);
        if (!File.Exists(file))
            throw new FileNotFoundException($"Tensor '{t.Name}' stores its data in '{file}', which does not exist (external data is resolved relative to the model's folder).", file);
        using var stream = File.OpenRead(file);
        if (length < 0)
            length = stream.Length - offset;
        if (offset + length > stream.Length)
            throw new InvalidDataException($"Tensor '{t.Name}': external data range [{offset}, {offset + length}) lies beyond the end of '{file}' ({stream.Length} bytes).");
        var bytes = new byte[length];
        stream.Seek(offset, SeekOrigin.Begin);
        stream.ReadExactly(bytes);
        t.RawData = Google.Protobuf.ByteString.CopyFrom(bytes);
        t.ExternalData.Clear();
        t.DataLocation = TensorProto.Types.DataLocation.Default;
    }
}
