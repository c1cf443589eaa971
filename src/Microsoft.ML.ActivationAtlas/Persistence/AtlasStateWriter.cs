using System.IO.Compression;
using System.Runtime.InteropServices;
using System.Text.Json;

namespace Microsoft.ML.ActivationAtlas.Persistence;

/// <summary>
/// Writes one transformer's state as named entries under its own folder of the model zip.
/// Arrays are stored as raw little-endian bytes; small settings as JSON.
/// </summary>
internal sealed class AtlasStateWriter
{
    private readonly ZipArchive _zip;
    private readonly string _prefix;

    internal AtlasStateWriter(ZipArchive zip, string prefix)
    {
        _zip = zip;
        _prefix = prefix.EndsWith('/') ? prefix : prefix + "/";
    }

    /// <summary>Writes <paramref name="value"/> as a JSON entry.</summary>
    public void WriteJson<T>(string name, T value)
    {
        using var s = Open(name);
        JsonSerializer.Serialize(s, value, PersistenceJson.Options);
    }

    /// <summary>Writes a float array entry.</summary>
    public void WriteFloats(string name, ReadOnlySpan<float> values) => WriteBytes(name, MemoryMarshal.AsBytes(values));

    /// <summary>Writes an int array entry.</summary>
    public void WriteInts(string name, ReadOnlySpan<int> values) => WriteBytes(name, MemoryMarshal.AsBytes(values));

    /// <summary>Writes a raw byte entry (for example an ONNX model).</summary>
    public void WriteBytes(string name, ReadOnlySpan<byte> bytes)
    {
        using var s = Open(name);
        s.Write(bytes);
    }

    /// <summary>Opens a new entry for streaming writes.</summary>
    public Stream Open(string name)
    {
        if (string.IsNullOrEmpty(name) || name.Contains("..", StringComparison.Ordinal))
            throw new ArgumentException($"Invalid state entry name '{name}'.", nameof(name));
        return _zip.CreateEntry(_prefix + name, CompressionLevel.Fastest).Open();
    }

    /// <summary>A writer for a nested component (for example a sub-transformer), under a sub-folder.</summary>
    public AtlasStateWriter Nested(string folder) => new(_zip, _prefix + folder);
}

internal static class PersistenceJson
{
    public static readonly JsonSerializerOptions Options = new()
    {
        WriteIndented = true,
        IncludeFields = true,
    };
}
