using System.Runtime.InteropServices;
using System.Text.Json;
using Microsoft.ML.ActivationAtlas.Rendering;

namespace Microsoft.ML.ActivationAtlas.Building;

/// <summary>
/// The default <see cref="IAtlasStageStore"/>: a matrix is <c>&lt;name&gt;.bin</c> (little-endian float32, row-major)
/// beside <c>&lt;name&gt;.json</c> (its key and shape); bytes are <c>&lt;name&gt;</c> beside <c>&lt;name&gt;.key</c>.
/// Each file is written under a temporary name and renamed when complete, the description last, so an entry whose
/// write was interrupted reads as missing.
/// </summary>
public sealed class FileStageStore : IAtlasStageStore
{
    private sealed record Meta(string Key, int Rows, int Columns);

    /// <summary>A store in <paramref name="folder"/> (created on the first save).</summary>
    /// <param name="folder">The folder.</param>
    public FileStageStore(string folder)
    {
        ArgumentException.ThrowIfNullOrEmpty(folder);
        Folder = folder;
    }

    /// <summary>The folder holding the entries.</summary>
    public string Folder { get; }

    /// <inheritdoc/>
    public bool TryLoad(string name, string key, out float[] values, out int rows, out int columns)
    {
        values = [];
        rows = columns = 0;
        string meta = Path.Combine(Folder, name + ".json"), bin = Path.Combine(Folder, name + ".bin");
        if (!File.Exists(meta) || !File.Exists(bin))
            return false;
        var m = JsonSerializer.Deserialize<Meta>(File.ReadAllText(meta));
        if (m is null || m.Key != key)
            return false;
        var bytes = File.ReadAllBytes(bin);
        if (bytes.Length != (long)m.Rows * m.Columns * sizeof(float))
            return false;
        values = MemoryMarshal.Cast<byte, float>(bytes).ToArray();
        rows = m.Rows;
        columns = m.Columns;
        return true;
    }

    /// <inheritdoc/>
    public void Save(string name, string key, float[] values, int rows, int columns)
    {
        ArgumentNullException.ThrowIfNull(values);
        if (values.Length != (long)rows * columns)
            throw new ArgumentException($"Stage '{name}': {values.Length} values are not {rows} x {columns}.", nameof(values));
        Directory.CreateDirectory(Folder);
        File.Delete(Path.Combine(Folder, name + ".json"));
        var bytes = MemoryMarshal.AsBytes(values.AsSpan()).ToArray();
        AtomicOutput.WriteFile(Path.Combine(Folder, name + ".bin"), s => s.Write(bytes));
        AtomicOutput.WriteFile(Path.Combine(Folder, name + ".json"), s => JsonSerializer.Serialize(s, new Meta(key, rows, columns)));
    }

    /// <inheritdoc/>
    public bool TryLoadBytes(string name, string key, out byte[] bytes)
    {
        bytes = [];
        string path = Path.Combine(Folder, name), keyPath = path + ".key";
        if (!File.Exists(path) || !File.Exists(keyPath) || File.ReadAllText(keyPath) != key)
            return false;
        bytes = File.ReadAllBytes(path);
        return true;
    }

    /// <inheritdoc/>
    public void SaveBytes(string name, string key, byte[] bytes)
    {
        ArgumentNullException.ThrowIfNull(bytes);
        string path = Path.Combine(Folder, name);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.Delete(path + ".key");
        AtomicOutput.WriteFile(path, s => s.Write(bytes));
        AtomicOutput.WriteFile(path + ".key", s => s.Write(System.Text.Encoding.UTF8.GetBytes(key)));
    }

    /// <inheritdoc/>
    public void Delete(string name)
    {
        foreach (var suffix in new[] { ".json", ".bin", ".key", "" })
        {
            string path = Path.Combine(Folder, name + suffix);
            if (File.Exists(path))
                File.Delete(path);
        }
    }
}
