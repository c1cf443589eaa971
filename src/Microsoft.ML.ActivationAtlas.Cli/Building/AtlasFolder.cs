using System.Text.Json;

namespace Microsoft.ML.ActivationAtlas.Cli.Building;

/// <summary>
/// The files of a built atlas folder: <c>atlas.png</c>, <c>index.html</c> (+ <c>icons/</c>, <c>examples/</c>,
/// <c>classes/</c>), <c>atlas.json</c>, <c>rows.json</c> (the image and label of every row) and <c>cache/</c>
/// (the finished stages, reused by <c>atlas class</c> and <c>atlas compare</c>). A build fills
/// <c>&lt;out&gt;.partial</c> and renames it to <c>&lt;out&gt;</c> when complete.
/// </summary>
internal static class AtlasFolder
{
    public const string RowsFile = "rows.json";
    public const string ModelFile = "model.zip";
    public const string SettingsFile = "build.json";
    public const string CacheFolder = "cache";

    public sealed record RowList(string ImageRoot, string[] Paths, string[] Labels);

    public sealed record BuildSettings(string Model, string Layer, int[] Grids, string ClassValues, string[] ClassNames, int IconSize = 64);

    /// <summary>Fails when <paramref name="outDir"/> exists.</summary>
    public static void EnsureFree(string outDir)
    {
        string full = Path.GetFullPath(outDir).TrimEnd(Path.DirectorySeparatorChar);
        if (Directory.Exists(full) || File.Exists(full))
            throw new IOException($"The output folder '{outDir}' already exists; choose another --out or remove it.");
    }

    /// <summary>Checks <paramref name="outDir"/> is free and returns the work folder beside it (kept from an interrupted run).</summary>
    public static string PrepareWork(string outDir)
    {
        EnsureFree(outDir);
        string full = Path.GetFullPath(outDir).TrimEnd(Path.DirectorySeparatorChar);
        string work = full + ".partial";
        Directory.CreateDirectory(work);
        return work;
    }

    /// <summary>Renames the finished work folder to the output folder.</summary>
    public static void Complete(string work, string outDir)
    {
        string full = Path.GetFullPath(outDir).TrimEnd(Path.DirectorySeparatorChar);
        if (Directory.Exists(full))
            throw new IOException($"The output folder '{outDir}' appeared while building; the result is left in '{work}'.");
        Directory.Move(work, full);
    }

    /// <summary>Opens a built atlas folder, with clear errors when it is not one.</summary>
    public static (RowList Rows, BuildSettings Settings) Open(string atlasDir)
    {
        if (!Directory.Exists(atlasDir))
            throw new DirectoryNotFoundException($"The atlas folder '{atlasDir}' does not exist.");
        string rows = Path.Combine(atlasDir, RowsFile), settings = Path.Combine(atlasDir, SettingsFile);
        if (!File.Exists(rows) || !File.Exists(settings))
            throw new InvalidDataException($"'{atlasDir}' is not an atlas folder built by 'atlas build' ({RowsFile} or {SettingsFile} is missing).");
        return (JsonSerializer.Deserialize<RowList>(File.ReadAllText(rows))!, JsonSerializer.Deserialize<BuildSettings>(File.ReadAllText(settings))!);
    }

    public static void WriteJson<T>(string path, T value)
    {
        string tmp = path + ".tmp";
        File.WriteAllText(tmp, JsonSerializer.Serialize(value));
        File.Move(tmp, path, overwrite: true);
    }
}
