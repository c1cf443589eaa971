using System.Globalization;
using Microsoft.ML.ActivationAtlas.Building;
using Microsoft.ML.ActivationAtlas.Datasets;
using Microsoft.ML.ActivationAtlas.Rendering;
using Microsoft.ML.ActivationAtlas.Search;

namespace Microsoft.ML.ActivationAtlas.Cluster;

/// <summary>
/// Concept searches of large folders in parts: <see cref="WriteShard"/> searches one <see cref="Shard"/> of the images
/// and keeps its best <c>top</c> matches with the settings that must agree between parts; <see cref="ShardMerge.Merge"/>
/// takes the best <c>top</c> of all the parts' matches and writes the files
/// <see cref="BuiltAtlas.WriteSearch"/> writes over the whole folder. The global best <c>top</c> are among the parts'
/// best <c>top</c>, and ties are broken as one process breaks them (the earlier image in the list first), so the
/// merged matches are the single run's; only the timing in <c>search.json</c> (<c>seconds</c>,
/// <c>imagesPerSecond</c>: the parts' seconds added) differs.
/// </summary>
public static class ShardedSearch
{
    /// <summary>The command name recorded in the shard's manifest.</summary>
    public const string Command = "search";

    /// <summary>
    /// Searches shard <paramref name="shard"/> of <paramref name="images"/> for <paramref name="query"/> on
    /// <paramref name="atlas"/> and writes its best <paramref name="top"/> matches to <c>shard.json</c> in the new folder
    /// <paramref name="outputFolder"/> (written under a temporary name and renamed when complete).
    /// </summary>
    /// <param name="atlas">The built atlas.</param>
    /// <param name="query">The direction to search for.</param>
    /// <param name="images">The whole image list (the shard is taken from it).</param>
    /// <param name="top">How many images the merged search keeps; each shard keeps as many.</param>
    /// <param name="shard">The part to search.</param>
    /// <param name="outputFolder">The shard's folder; it must not exist.</param>
    /// <param name="progress">Receives each stage's progress (optional).</param>
    /// <param name="cancellationToken">Cancels the work; nothing is written then.</param>
    /// <returns>The shard's own result (its best matches, ranked within the shard).</returns>
    public static ConceptSearchResult WriteShard(BuiltAtlas atlas, ConceptQuery query, ImageFolder images, int top, Shard shard, string outputFolder,
        IProgress<AtlasBuildProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(atlas);
        ArgumentNullException.ThrowIfNull(query);
        ArgumentNullException.ThrowIfNull(images);
        ArgumentException.ThrowIfNullOrEmpty(outputFolder);
        AtlasFolder.EnsureFree(outputFolder);
        if (images.Paths.Count == 0)
            throw new InvalidDataException($"The image folder '{images.Root}' holds no readable images ({images.Unreadable.Count} unreadable: {string.Join(", ", images.Unreadable.Take(5))}).");
        var part = shard.Take(images.Paths);
        if (part.Count == 0)
            throw new ArgumentException($"Shard {shard} of the {images.Paths.Count} images of '{images.Root}' is empty: use at most {images.Paths.Count} shards.", nameof(shard));
        var stage = new StageReporter(progress).Start("search");
        var labels = BuiltAtlas.LabelsOf(images);
        var result = atlas.SearchImages(query, part, top, p => labels.GetValueOrDefault(p, ""), stage, cancellationToken);
        stage.Done($"{result.ImagesSearched:N0} images (shard {shard}), {result.ImagesPerSecond:0.#}/s");
        var manifest = new ShardManifest
        {
            Command = Command,
            Shard = shard.Index,
            Shards = shard.Count,
            Settings = new Dictionary<string, string>(ShardedHistogram.AtlasSettings(atlas, images))
            {
                ["unreadable"] = string.Join("\n", images.Unreadable),
                ["query"] = $"{query.Kind}: {query.Description}",
                ["direction"] = Fingerprint(query.Direction.Span),
                ["top"] = top.ToString(CultureInfo.InvariantCulture),
            },
            Search = new SearchShardPart
            {
                Kind = query.Kind,
                Description = query.Description,
                Direction = query.Direction.ToArray(),
                Images = part.Count,
                Layer = result.LayerName,
                GridHeight = result.GridHeight,
                GridWidth = result.GridWidth,
                ImagesSearched = result.ImagesSearched,
                Skipped = result.SkippedImages.ToArray(),
                Seconds = result.Seconds,
                Matches = result.Matches.ToArray(),
            },
        };
        AtomicOutput.WriteDirectory(outputFolder, overwrite: false, dir => ShardManifest.Write(dir, manifest));
        return result;
    }

    /// <summary>Merges checked search shards and writes the whole result (called by <see cref="ShardMerge.Merge"/>).</summary>
    internal static ConceptSearchResult Merge(IReadOnlyList<(string Folder, ShardManifest Manifest)> shards, string outputFolder, IProgress<AtlasBuildProgress>? progress)
    {
        var settings = shards[0].Manifest.Settings;
        string atlasFolder = ShardedHistogram.CheckAtlas(settings);
        AtlasFolder.EnsureFree(outputFolder);
        var parts = shards.Select(s => s.Manifest.Search ?? throw new InvalidDataException($"Shard '{s.Folder}' has no search results.")).ToList();
        int expected = int.Parse(settings["imageCount"], CultureInfo.InvariantCulture), top = int.Parse(settings["top"], CultureInfo.InvariantCulture);
        if (parts.Sum(p => p.Images) != expected)
            throw new InvalidDataException($"The shards in '{Path.GetDirectoryName(shards[0].Folder)}' searched {parts.Sum(p => p.Images)} images, but the folder '{settings["images"]}' has {expected}.");
        var stage = new StageReporter(progress).Start("merge");
        // The best of all shards' best: by score, then by the image's place in the whole list (shard, then its rank
        // in the shard), as one process's heap keeps the earlier of two equal images.
        var matches = parts.SelectMany((p, k) => p.Matches.Select(m => (Match: m, Shard: k)))
            .OrderByDescending(x => x.Match.Score).ThenBy(x => x.Shard).ThenBy(x => x.Match.Rank)
            .Take(top).Select((x, i) => x.Match with { Rank = i + 1 }).ToArray();
        var first = parts[0];
        var query = ConceptQuery.Restore(first.Kind, first.Description, first.Direction);
        var result = new ConceptSearchResult(query, first.Layer, first.GridHeight, first.GridWidth, matches, parts.Sum(p => p.ImagesSearched),
            parts.SelectMany(p => p.Skipped).ToArray(), parts.Sum(p => p.Seconds));
        stage.Done($"{matches.Length} of {parts.Sum(p => p.Matches.Length)} matches of {shards.Count} shards");
        stage = new StageReporter(progress).Start("outputs");
        var unreadable = settings["unreadable"].Length == 0 ? [] : settings["unreadable"].Split('\n');
        ConceptSearchWriter.Write(result, atlasFolder, settings["images"], unreadable, outputFolder);
        stage.Done();
        return result;
    }

    private static string Fingerprint(ReadOnlySpan<float> values) =>
        Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(System.Runtime.InteropServices.MemoryMarshal.AsBytes(values)))[..16];
}

/// <summary>What a search shard's manifest holds besides its settings.</summary>
internal sealed class SearchShardPart
{
    public string Kind { get; set; } = "";
    public string Description { get; set; } = "";
    public float[] Direction { get; set; } = [];
    /// <summary>Images in the shard (readable or not).</summary>
    public int Images { get; set; }
    public string Layer { get; set; } = "";
    public int GridHeight { get; set; }
    public int GridWidth { get; set; }
    public int ImagesSearched { get; set; }
    public string[] Skipped { get; set; } = [];
    public double Seconds { get; set; }
    public ConceptMatch[] Matches { get; set; } = [];
}
