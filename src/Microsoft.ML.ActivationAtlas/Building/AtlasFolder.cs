using System.Text.Json;
using Microsoft.ML.ActivationAtlas.Rendering;

namespace Microsoft.ML.ActivationAtlas.Building;

/// <summary>
/// The files of a built atlas folder: <c>atlas.png</c>, <c>index.html</c> (+ <c>icons/</c>, <c>examples/</c>,
/// <c>classes/</c>), <c>atlas.json</c>, <c>model.zip</c> (the fitted pipeline), <c>rows.json</c> (the image and label
/// of every row), <c>build.json</c> (the settings) and <c>cache/</c> (the stage store). A build fills
/// <c>&lt;out&gt;.partial</c> and renames it to <c>&lt;out&gt;</c> when complete.
/// </summary>
internal static class AtlasFolder
{
    public const string RowsFile = "rows.json";
    public const string ModelFile = "model.zip";
    public const string SettingsFile = "build.json";
    public const string CacheFolder = "cache";

    /// <summary>The stage-store entry of a trained head's weights and biases (<see cref="LinearHeadTrainer"/>).</summary>
    public const string HeadEntry = "head";

    public sealed record RowList(string ImageRoot, string[] Paths, string[] Labels);

    /// <summary>What <c>build.json</c> holds: everything needed to reopen the atlas as it was built.</summary>
    public sealed record BuildSettings(string Model, string Layer, int[] Grids, string ClassValues, string[] ClassNames)
    {
        public int MinimumCount { get; init; } = 1;
        public string Icons { get; init; } = nameof(AtlasIconKind.Examples);
        public int IconSize { get; init; } = 64;
        public int IconGrid { get; init; }
        public int[]? IconGrids { get; init; }
        public double? IconBudgetSeconds { get; init; }
        public string? IconNote { get; init; }
        public int ImageGrid { get; init; }
        public string? IconKey { get; init; }

        /// <summary>How the inverted icons were drawn (null in atlases built before it was kept, and with example icons).</summary>
        public AtlasIconStep.IconSettings? IconSettings { get; init; }
        public string? ActivationsKey { get; init; }
        public string? ClassesKey { get; init; }
        public int Seed { get; init; }
        public int SkippedCount { get; init; }
        public string[] Skipped { get; init; } = [];
    }

    /// <summary>Fails when <paramref name="outDir"/> exists.</summary>
    public static void EnsureFree(string outDir)
    {
        string full = Path.GetFullPath(outDir).TrimEnd(Path.DirectorySeparatorChar);
        if (Directory.Exists(full) || File.Exists(full))
            throw new IOException($"The output folder '{outDir}' already exists; choose another or remove it.");
    }

    /// <summary>Checks <paramref name="outDir"/> is free and returns the work folder beside it (kept from an interrupted run).</summary>
    public static string PrepareWork(string outDir)
    {
        EnsureFree(outDir);
        string work = WorkFolder(outDir);
        Directory.CreateDirectory(work);
        return work;
    }

    /// <summary>The work folder of <paramref name="outDir"/>: <c>&lt;out&gt;.partial</c>.</summary>
    public static string WorkFolder(string outDir) => Path.GetFullPath(outDir).TrimEnd(Path.DirectorySeparatorChar) + ".partial";

    /// <summary>Renames the finished work folder to the output folder.</summary>
    public static void Complete(string work, string outDir)
    {
        string full = Path.GetFullPath(outDir).TrimEnd(Path.DirectorySeparatorChar);
        if (Directory.Exists(full))
            throw new IOException($"The output folder '{outDir}' appeared while building; the result is left in '{work}'.");
        Directory.Move(work, full);
    }

    /// <summary>Reads a built atlas folder's row list and settings, with clear errors when it is not one.</summary>
    public static (RowList Rows, BuildSettings Settings) Open(string atlasDir)
    {
        if (!Directory.Exists(atlasDir))
            throw new DirectoryNotFoundException($"The atlas folder '{atlasDir}' does not exist.");
        string rows = Path.Combine(atlasDir, RowsFile), settings = Path.Combine(atlasDir, SettingsFile);
        if (!File.Exists(rows) || !File.Exists(settings))
            throw new InvalidDataException($"'{atlasDir}' is not an atlas folder built by 'atlas build' ({RowsFile} or {SettingsFile} is missing).");
        try
        {
            return (JsonSerializer.Deserialize<RowList>(File.ReadAllText(rows))!, JsonSerializer.Deserialize<BuildSettings>(File.ReadAllText(settings))!);
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"'{atlasDir}': {RowsFile} or {SettingsFile} is damaged: {e.Message}", e);
        }
    }

    /// <summary>Writes <paramref name="value"/> as JSON, atomically.</summary>
    public static void WriteJson<T>(string path, T value) => AtomicOutput.WriteFile(path, s => JsonSerializer.Serialize(s, value));
}
