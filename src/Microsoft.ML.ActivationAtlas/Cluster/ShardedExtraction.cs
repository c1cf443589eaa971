using System.Globalization;
using System.Text.Json;
using Microsoft.ML.ActivationAtlas.Building;
using Microsoft.ML.ActivationAtlas.Datasets;
using Microsoft.ML.ActivationAtlas.Extraction;
using Microsoft.ML.ActivationAtlas.Rendering;

namespace Microsoft.ML.ActivationAtlas.Cluster;

/// <summary>
/// Activation extraction of large folders in parts: <see cref="WriteShard"/> writes the rows of one <see cref="Shard"/>
/// of the images (each with the random position it gets in one pass over the whole list) in the files of
/// <see cref="ActivationExport.Write"/>, with the settings that must agree between parts; <see cref="ShardMerge.Merge"/>
/// concatenates the parts in the list's order into the files one process writes, byte for byte.
/// </summary>
public static class ShardedExtraction
{
    /// <summary>The command name recorded in the shard's manifest.</summary>
    public const string Command = "extract";

    /// <summary>The stem of the files inside a shard's folder (<c>activations.npy</c>, <c>activations.rows.csv</c>, ...).</summary>
    public const string Stem = "activations";

    /// <summary>
    /// Extracts shard <paramref name="shard"/> of <paramref name="images"/> into the new folder
    /// <paramref name="outputFolder"/>: <c>activations.npy</c> (one per layer when there are several), its sidecars and
    /// <c>shard.json</c>, written under a temporary name and renamed when complete.
    /// </summary>
    /// <param name="mlContext">The ML.NET context.</param>
    /// <param name="images">The whole image list (the shard is taken from it).</param>
    /// <param name="options">The extraction, as for <see cref="ActivationExport.Write"/>.</param>
    /// <param name="shard">The part to extract.</param>
    /// <param name="outputFolder">The shard's folder; it must not exist.</param>
    /// <param name="progress">Receives the <c>extract</c> stage's progress (optional).</param>
    /// <param name="cancellationToken">Cancels the work; nothing is written then.</param>
    public static ActivationExportResult WriteShard(MLContext mlContext, ImageFolder images, ActivationExtractingEstimator.Options options, Shard shard,
        string outputFolder, IProgress<AtlasBuildProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(images);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentException.ThrowIfNullOrEmpty(outputFolder);
        AtlasFolder.EnsureFree(outputFolder);
        ActivationExportResult? result = null;
        AtomicOutput.WriteDirectory(outputFolder, overwrite: false, dir =>
        {
            var (r, skipped) = ActivationExport.WriteRows(mlContext, images, options, shard, Path.Combine(dir, Stem + ".npy"), progress, cancellationToken);
            result = r;
            ShardManifest.Write(dir, new ShardManifest
            {
                Command = Command,
                Shard = shard.Index,
                Shards = shard.Count,
                Settings = new Dictionary<string, string>
                {
                    ["model"] = options.Model!.Description,
                    ["layers"] = string.Join(",", r.Layers.Select(l => l.Name)),
                    ["sampling"] = options.Sampling.ToString(),
                    ["seed"] = options.Seed.ToString(CultureInfo.InvariantCulture),
                    ["margin"] = options.Margin.ToString(CultureInfo.InvariantCulture),
                    ["badRows"] = options.BadRows.ToString(),
                    ["images"] = images.Root,
                    ["imageCount"] = images.Paths.Count.ToString(CultureInfo.InvariantCulture),
                    ["imagesFingerprint"] = images.Fingerprint(),
                    ["executionProvider"] = r.ExecutionProvider,
                },
                Extraction = new ExtractionShardPart
                {
                    Images = (int)(shard.End(images.Paths.Count) - shard.Start(images.Paths.Count)),
                    LayerNames = r.Layers.Select(l => l.FriendlyName ?? l.Name).ToArray(),
                    Channels = r.Layers.Select(l => l.Channels).ToArray(),
                    Files = r.Files.Select(Path.GetFileName).ToArray()!,
                    Rows = r.Rows,
                    Skipped = skipped,
                },
            });
        });
        return result!;
    }

    /// <summary>Concatenates checked extraction shards into <paramref name="outputPath"/> (called by <see cref="ShardMerge.Merge"/>).</summary>
    internal static IReadOnlyList<string> Merge(IReadOnlyList<(string Folder, ShardManifest Manifest)> shards, string outputPath, IProgress<AtlasBuildProgress>? progress)
    {
        var settings = shards[0].Manifest.Settings;
        var parts = shards.Select(s => s.Manifest.Extraction ?? throw new InvalidDataException($"Shard '{s.Folder}' has no extraction record.")).ToList();
        int expected = int.Parse(settings["imageCount"], CultureInfo.InvariantCulture);
        if (parts.Sum(p => p.Images) != expected)
            throw new InvalidDataException($"The shards in '{Path.GetDirectoryName(shards[0].Folder)}' hold {parts.Sum(p => p.Images)} images, but the folder '{settings["images"]}' has {expected}.");
        var first = parts[0];
        using var writer = new ActivationFileWriter(outputPath, first.LayerNames, first.Channels);
        foreach (var f in writer.Files)
            if (File.Exists(f))
                throw new IOException($"'{f}' already exists; remove it or merge into another output.");
        var stage = new StageReporter(progress).Start("merge");
        for (int k = 0; k < shards.Count; k++)
        {
            var files = parts[k].Files.Select(f => Path.Combine(shards[k].Folder, f)).ToArray();
            long before = writer.Rows;
            writer.AppendFiles(files[..^2], files[^2]);
            if (writer.Rows - before != parts[k].Rows)
                throw new InvalidDataException($"Shard '{shards[k].Folder}' holds other rows than its {ShardManifest.FileName} says ({parts[k].Rows}).");
            stage.Report((k + 1.0) / shards.Count);
        }
        // The first shard's sidecar with the whole list's skipped images: the single run's sidecar.
        var sidecar = JsonSerializer.Deserialize<Dictionary<string, JsonElement>>(File.ReadAllText(Path.Combine(shards[0].Folder, first.Files[^1])))
            ?? throw new InvalidDataException($"'{Path.Combine(shards[0].Folder, first.Files[^1])}' is empty.");
        var metadata = new Dictionary<string, object?>();
        foreach (var (key, value) in sidecar)
        {
            if (key is "rows" or "files" or "rows_file" or "format")
                continue; // the writer adds them
            metadata[key] = key switch
            {
                "skipped_images" => parts.Sum(p => (long)p.Skipped.Length),
                "skipped" => ActivationExport.SkippedJson(parts.SelectMany(p => p.Skipped)),
                _ => value,
            };
        }
        writer.Complete(metadata);
        stage.Done($"{writer.Rows:N0} rows of {shards.Count} shards");
        return writer.Files;
    }
}

/// <summary>What an extraction shard's manifest holds besides its settings.</summary>
internal sealed class ExtractionShardPart
{
    /// <summary>Images in the shard (readable or not).</summary>
    public int Images { get; set; }
    public string[] LayerNames { get; set; } = [];
    public int[] Channels { get; set; } = [];
    /// <summary>The shard's files: activation arrays, rows CSV, JSON sidecar.</summary>
    public string[] Files { get; set; } = [];
    public long Rows { get; set; }
    /// <summary>Unreadable images skipped, numbered in the whole list.</summary>
    public SkippedRow[] Skipped { get; set; } = [];
}
