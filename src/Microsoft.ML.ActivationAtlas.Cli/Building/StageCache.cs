using System.Runtime.InteropServices;
using System.Text.Json;

namespace Microsoft.ML.ActivationAtlas.Cli.Building;

/// <summary>
/// Finished stages of a build, kept in the work folder so a rerun after an interruption reuses them. Each stage is a
/// row-major float matrix plus a small JSON file with the settings it was computed with; a stage whose settings
/// changed is recomputed. Files are written under a temporary name and renamed when complete.
/// </summary>
internal sealed class StageCache(string folder)
{
    public string Folder { get; } = folder;

    private sealed record Meta(string Key, int Rows, int Columns);

    /// <summary>The cached matrix of <paramref name="stage"/> if it was computed with <paramref name="key"/>.</summary>
    public bool TryLoad(string stage, string key, out float[] data, out int rows, out int columns)
    {
        data = [];
        rows = columns = 0;
        string meta = Path.Combine(Folder, stage + ".json"), bin = Path.Combine(Folder, stage + ".bin");
        if (!File.Exists(meta) || !File.Exists(bin))
            return false;
        var m = JsonSerializer.Deserialize<Meta>(File.ReadAllText(meta));
        if (m is null || m.Key != key)
            return false;
        var bytes = File.ReadAllBytes(bin);
        if (bytes.Length != (long)m.Rows * m.Columns * sizeof(float))
            return false;
        data = MemoryMarshal.Cast<byte, float>(bytes).ToArray();
        rows = m.Rows;
        columns = m.Columns;
        return true;
    }

    /// <summary>The cached matrix of <paramref name="stage"/>, whatever settings it was computed with.</summary>
    public bool TryLoadAny(string stage, out float[] data, out int rows, out int columns)
    {
        data = [];
        rows = columns = 0;
        string meta = Path.Combine(Folder, stage + ".json");
        if (!File.Exists(meta))
            return false;
        var m = JsonSerializer.Deserialize<Meta>(File.ReadAllText(meta));
        return m is not null && TryLoad(stage, m.Key, out data, out rows, out columns);
    }

    /// <summary>Stores a finished stage.</summary>
    public void Save(string stage, string key, float[] data, int rows, int columns)
    {
        Directory.CreateDirectory(Folder);
        WriteAtomic(Path.Combine(Folder, stage + ".bin"), MemoryMarshal.AsBytes(data.AsSpan()).ToArray());
        WriteAtomic(Path.Combine(Folder, stage + ".json"), JsonSerializer.SerializeToUtf8Bytes(new Meta(key, rows, columns)));
    }

    /// <summary>Whether a non-matrix stage (e.g. icons) finished with <paramref name="key"/>.</summary>
    public bool IsDone(string stage, string key)
    {
        string path = Path.Combine(Folder, stage + ".done");
        return File.Exists(path) && File.ReadAllText(path) == key;
    }

    /// <summary>Marks a non-matrix stage finished.</summary>
    public void MarkDone(string stage, string key)
    {
        Directory.CreateDirectory(Folder);
        WriteAtomic(Path.Combine(Folder, stage + ".done"), System.Text.Encoding.UTF8.GetBytes(key));
    }

    private static void WriteAtomic(string path, byte[] bytes)
    {
        string tmp = path + ".tmp";
        File.WriteAllBytes(tmp, bytes);
        File.Move(tmp, path, overwrite: true);
    }
}
