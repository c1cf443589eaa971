using System.IO.Compression;
using System.Runtime.InteropServices;
using System.Text.Json;

namespace Microsoft.ML.ActivationAtlas.Persistence;

/// <summary>Reads the entries an <see cref="AtlasStateWriter"/> wrote for one transformer.</summary>
internal sealed class AtlasStateReader
{
    private readonly ZipArchive _zip;
    private readonly string _prefix;

    internal AtlasStateReader(ZipArchive zip, string prefix, string modelPath)
    {
        _zip = zip;
        _prefix = prefix.EndsWith('/') ? prefix : prefix + "/";
        ModelPath = modelPath;
    }

    /// <summary>The model file being read, for error messages.</summary>
    public string ModelPath { get; }

    /// <summary>Whether an entry exists.</summary>
    public bool Contains(string name) => _zip.GetEntry(_prefix + name) is not null;

    /// <summary>Reads a JSON entry.</summary>
    public T ReadJson<T>(string name)
    {
        using var s = Open(name);
        return JsonSerializer.Deserialize<T>(s, PersistenceJson.Options)
            ?? throw new InvalidDataException($"{ModelPath}: entry '{_prefix}{name}' is empty.");
    }

    /// <summary>Reads a float array entry.</summary>
    public float[] ReadFloats(string name) => MemoryMarshal.Cast<byte, float>(ReadBytes(name)).ToArray();

    /// <summary>Reads an int array entry.</summary>
    public int[] ReadInts(string name) => MemoryMarshal.Cast<byte, int>(ReadBytes(name)).ToArray();

    /// <summary>Reads a raw byte entry.</summary>
    public byte[] ReadBytes(string name)
    {
        using var s = Open(name);
        using var ms = new MemoryStream();
        s.CopyTo(ms);
        return ms.ToArray();
    }

    /// <summary>Opens an entry for streaming reads.</summary>
    public Stream Open(string name)
    {
        var entry = _zip.GetEntry(_prefix + name)
            ?? throw new InvalidDataException($"{ModelPath}: the model file has no entry '{_prefix}{name}'; it is incomplete or was written by another tool.");
        return entry.Open();
    }

    /// <summary>A reader for a nested component written with <see cref="AtlasStateWriter.Nested"/>.</summary>
    public AtlasStateReader Nested(string folder) => new(_zip, _prefix + folder, ModelPath);
}
