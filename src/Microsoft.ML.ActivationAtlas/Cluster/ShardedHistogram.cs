using System.Security.Cryptography;
using System.Text.Json;
using Microsoft.ML.ActivationAtlas.Building;
using Microsoft.ML.ActivationAtlas.Datasets;
using Microsoft.ML.ActivationAtlas.Histogram;
using Microsoft.ML.ActivationAtlas.Rendering;

namespace Microsoft.ML.ActivationAtlas.Cluster;

/// <summary>
/// Concept histograms of large folders in parts: <see cref="WriteShard"/> counts one <see cref="Shard"/> of the images
/// (and of a folder to compare with) on a built atlas and writes the counts with the settings that must agree between
/// parts; <see cref="ShardMerge.Merge"/> adds the parts and writes the same files as
/// <see cref="BuiltAtlas.WriteConceptHistogram(ImageFolder, ImageFolder?, int, string, IProgress{AtlasBuildProgress}?, CancellationToken, HistogramComparisonOptions?)"/>
/// over the whole folders. Memory holds the counts, not the images.
/// </summary>
public static class ShardedHistogram
{
    /// <summary>The command name recorded in the shard's manifest.</summary>
    public const string Command = "histogram";

    /// <summary>
    /// Counts shard <paramref name="shard"/> of <paramref name="images"/> (and of <paramref name="compare"/>) on
    /// <paramref name="atlas"/> and writes <c>shard.json</c> into the new folder <paramref name="outputFolder"/>
    /// (written under a temporary name and renamed when complete).
    /// </summary>
    /// <param name="atlas">The built atlas.</param>
    /// <param name="images">The whole image list (the shard is taken from it).</param>
    /// <param name="compare">A whole second list to compare with, or null.</param>
    /// <param name="shard">The part to count.</param>
    /// <param name="gridSize">The grid of the merged heat maps; one of the atlas's grids.</param>
    /// <param name="outputFolder">The shard's folder; it must not exist.</param>
    /// <param name="progress">Receives each stage's progress (optional).</param>
    /// <param name="cancellationToken">Cancels the work.</param>
    /// <param name="comparison">The comparison's settings the merge will use; null takes the defaults.</param>
    /// <returns>The number of images counted (of both lists).</returns>
    public static int WriteShard(BuiltAtlas atlas, ImageFolder images, ImageFolder? compare, Shard shard, int gridSize, string outputFolder,
        IProgress<AtlasBuildProgress>? progress = null, CancellationToken cancellationToken = default, HistogramComparisonOptions? comparison = null)
    {
        comparison ??= new HistogramComparisonOptions();
        ArgumentNullException.ThrowIfNull(atlas);
        ArgumentNullException.ThrowIfNull(images);
        ArgumentException.ThrowIfNullOrEmpty(outputFolder);
        atlas.CheckGrid(gridSize);
        AtlasFolder.EnsureFree(outputFolder);
        var report = new StageReporter(progress);
        var stage = report.Start("histogram");
        var a = Count(atlas, images, shard, cancellationToken);
        stage.Done($"{a.Total:N0} images (shard {shard})");
        ConceptHistogram? b = null;
        if (compare is not null)
        {
            stage = report.Start("compare");
            b = Count(atlas, compare, shard, cancellationToken);
            stage.Done($"{b.Total:N0} images (shard {shard})");
        }
        var manifest = new ShardManifest
        {
            Command = Command,
            Shard = shard.Index,
            Shards = shard.Count,
            Settings = new Dictionary<string, string>(AtlasSettings(atlas, images))
            {
                ["grids"] = string.Join(",", atlas.GridSizes),
                ["grid"] = gridSize.ToString(System.Globalization.CultureInfo.InvariantCulture),
                ["compare"] = compare?.Root ?? "",
                ["compareCount"] = (compare?.Paths.Count ?? 0).ToString(System.Globalization.CultureInfo.InvariantCulture),
                ["compareFingerprint"] = compare?.Fingerprint() ?? "",
                ["falseDiscoveryRate"] = comparison.FalseDiscoveryRate.ToString("R", System.Globalization.CultureInfo.InvariantCulture),
            },
            Counts = a.Counts(atlas.GridSizes[^1]).ToArray(),
            CompareCounts = b?.Counts(atlas.GridSizes[^1]).ToArray(),
        };
        AtomicOutput.WriteDirectory(outputFolder, overwrite: false, dir => ShardManifest.Write(dir, manifest));
        return a.Total + (b?.Total ?? 0);
    }

    /// <summary>Adds checked histogram shards and writes the whole result (called by <see cref="ShardMerge.Merge"/>).</summary>
    internal static void Merge(MLContext mlContext, IReadOnlyList<(string Folder, ShardManifest Manifest)> shards, string outputFolder,
        IProgress<AtlasBuildProgress>? progress)
    {
        var settings = shards[0].Manifest.Settings;
        var atlas = mlContext.Atlas().Open(CheckAtlas(settings));
        var a = Sum(atlas.GridSizes, shards.Select(s => s.Manifest.Counts));
        int expected = int.Parse(settings["imageCount"], System.Globalization.CultureInfo.InvariantCulture);
        if (a.Total != expected)
            throw new InvalidDataException($"The shards in '{Path.GetDirectoryName(shards[0].Folder)}' counted {a.Total} images, but the folder '{settings["images"]}' has {expected}.");
        ConceptHistogram? b = null;
        if (settings["compare"].Length > 0)
            b = Sum(atlas.GridSizes, shards.Select(s => s.Manifest.CompareCounts ?? throw new InvalidDataException($"Shard '{s.Folder}' has no counts of the compared folder.")));
        int grid = int.Parse(settings["grid"], System.Globalization.CultureInfo.InvariantCulture);
        var comparison = new HistogramComparisonOptions { FalseDiscoveryRate = double.Parse(settings["falseDiscoveryRate"], System.Globalization.CultureInfo.InvariantCulture) };
        atlas.WriteConceptHistogram(a, settings["images"], b, b is null ? null : settings["compare"], grid, outputFolder, progress, comparison);
    }

    private static ConceptHistogram Count(BuiltAtlas atlas, ImageFolder images, Shard shard, CancellationToken cancellationToken) =>
        atlas.ConceptHistogram(shard.Take(images.Paths), shard.Start(images.Paths.Count), images.Paths.Count, cancellationToken);

    private static ConceptHistogram Sum(IReadOnlyList<int> gridSizes, IEnumerable<int[]> finestCounts) =>
        ConceptHistogram.Merge(finestCounts.Select(c => ConceptHistogram.FromCounts(gridSizes, c)).ToList());

    /// <summary>The settings every shard made on an atlas records: the atlas (folder, fingerprint, model, layer) and the image list.</summary>
    internal static Dictionary<string, string> AtlasSettings(BuiltAtlas atlas, ImageFolder images) => new()
    {
        ["atlas"] = Path.GetFullPath(atlas.Folder),
        ["atlasFingerprint"] = AtlasFingerprint(atlas.Folder),
        ["model"] = atlas.ModelName,
        ["layer"] = atlas.LayerName,
        ["images"] = images.Root,
        ["imageCount"] = images.Paths.Count.ToString(System.Globalization.CultureInfo.InvariantCulture),
        ["imagesFingerprint"] = images.Fingerprint(),
    };

    /// <summary>The atlas folder the shards were made on, checked to be there and unchanged since.</summary>
    internal static string CheckAtlas(IReadOnlyDictionary<string, string> settings)
    {
        string atlasFolder = settings["atlas"];
        if (!Directory.Exists(atlasFolder))
            throw new DirectoryNotFoundException($"The atlas folder '{atlasFolder}' the shards were made on does not exist.");
        if (AtlasFingerprint(atlasFolder) != settings["atlasFingerprint"])
            throw new InvalidDataException($"The atlas folder '{atlasFolder}' changed after the shards were made on it (its build.json or model.zip differ).");
        return atlasFolder;
    }

    /// <summary>A fingerprint of a built atlas: its settings and fitted pipeline.</summary>
    internal static string AtlasFingerprint(string atlasFolder)
    {
        using var sha = SHA256.Create();
        foreach (var name in new[] { AtlasFolder.SettingsFile, AtlasFolder.ModelFile })
        {
            string path = Path.Combine(atlasFolder, name);
            if (!File.Exists(path))
                throw new FileNotFoundException($"'{atlasFolder}' is not a built atlas folder: it has no {name}.", path);
            var bytes = File.ReadAllBytes(path);
            sha.TransformBlock(bytes, 0, bytes.Length, null, 0);
        }
        sha.TransformFinalBlock([], 0, 0);
        return Convert.ToHexString(sha.Hash!)[..16];
    }
}

/// <summary>What a shard folder's <c>shard.json</c> holds.</summary>
internal sealed class ShardManifest
{
    public const string FileName = "shard.json";

    public string Command { get; set; } = "";
    public int Shard { get; set; }
    public int Shards { get; set; }
    public Dictionary<string, string> Settings { get; set; } = [];
    /// <summary>Counts of the finest grid, row-major.</summary>
    public int[] Counts { get; set; } = [];
    public int[]? CompareCounts { get; set; }
    /// <summary>A search shard's matches and what it searched.</summary>
    public SearchShardPart? Search { get; set; }
    /// <summary>An extraction shard's layers, rows and skipped images.</summary>
    public ExtractionShardPart? Extraction { get; set; }

    public static void Write(string folder, ShardManifest manifest) =>
        File.WriteAllText(Path.Combine(folder, FileName), JsonSerializer.Serialize(manifest));

    public static ShardManifest Read(string folder)
    {
        string path = Path.Combine(folder, FileName);
        try
        {
            return JsonSerializer.Deserialize<ShardManifest>(File.ReadAllText(path)) ?? throw new InvalidDataException($"'{path}' is empty.");
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"'{path}' is not a shard manifest: {e.Message}", e);
        }
    }
}
