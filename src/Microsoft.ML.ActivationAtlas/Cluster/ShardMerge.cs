using System.Globalization;
using Microsoft.ML.ActivationAtlas.Building;

namespace Microsoft.ML.ActivationAtlas.Cluster;

/// <summary>
/// Merges the shards of a sharded command (see <see cref="Shard"/>): checks that every shard <c>0..n-1</c> is present
/// and complete, and that all were made by the same command with the same settings, then writes the result one process
/// would have written.
/// </summary>
public static class ShardMerge
{
    /// <summary>
    /// Merges the shard folders inside <paramref name="shardFolder"/> (named <c>k-of-n</c>, each with its
    /// <c>shard.json</c>) into <paramref name="outputFolder"/>: the new folder of a histogram or a search, or the
    /// <c>.npy</c> path of an extraction (<see cref="ShardedHistogram"/>, <see cref="ShardedSearch"/>,
    /// <see cref="ShardedExtraction"/>).
    /// </summary>
    /// <param name="mlContext">The ML.NET context.</param>
    /// <param name="shardFolder">The folder holding the shards.</param>
    /// <param name="outputFolder">The output to create (a folder, or an extraction's <c>.npy</c> path); it must not exist.</param>
    /// <param name="progress">Receives each stage's progress (optional).</param>
    /// <returns>The number of shards merged.</returns>
    /// <exception cref="InvalidDataException">A shard is missing, incomplete, duplicated, or made with other settings
    /// (the message names it and the setting).</exception>
    public static int Merge(MLContext mlContext, string shardFolder, string outputFolder, IProgress<AtlasBuildProgress>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(mlContext);
        ArgumentException.ThrowIfNullOrEmpty(shardFolder);
        ArgumentException.ThrowIfNullOrEmpty(outputFolder);
        var shards = Check(shardFolder);
        switch (shards[0].Manifest.Command)
        {
            case ShardedHistogram.Command:
                ShardedHistogram.Merge(mlContext, shards, outputFolder, progress);
                break;
            case ShardedSearch.Command:
                ShardedSearch.Merge(shards, outputFolder, progress);
                break;
            case ShardedExtraction.Command:
                ShardedExtraction.Merge(shards, outputFolder, progress);
                break;
            default:
                throw new InvalidDataException($"The shards in '{shardFolder}' were made by '{shards[0].Manifest.Command}', which has no merge.");
        }
        return shards.Count;
    }

    /// <summary>Reads and checks the shards of a folder; returns them in shard order.</summary>
    internal static IReadOnlyList<(string Folder, ShardManifest Manifest)> Check(string shardFolder)
    {
        if (!Directory.Exists(shardFolder))
            throw new DirectoryNotFoundException($"The shard folder '{shardFolder}' does not exist.");
        var found = new List<(string Folder, ShardManifest Manifest)>();
        foreach (var dir in Directory.EnumerateDirectories(shardFolder).Order(StringComparer.Ordinal))
        {
            string name = Path.GetFileName(dir);
            if (!System.Text.RegularExpressions.Regex.IsMatch(name, "^[0-9]+-of-[0-9]+$"))
                continue; // temporary folders of running or interrupted shards
            if (!File.Exists(Path.Combine(dir, ShardManifest.FileName)))
                throw new InvalidDataException($"Shard '{dir}' is incomplete: it has no {ShardManifest.FileName}.");
            var manifest = ShardManifest.Read(dir);
            if (name != new Shard(manifest.Shard, manifest.Shards).FolderName)
                throw new InvalidDataException($"Shard '{dir}' holds shard {manifest.Shard}/{manifest.Shards}; its folder should be named {manifest.Shard}-of-{manifest.Shards}.");
            found.Add((dir, manifest));
        }
        if (found.Count == 0)
            throw new InvalidDataException($"The shard folder '{shardFolder}' holds no complete shards (folders named k-of-n with a {ShardManifest.FileName}).");
        var first = found[0];
        int n = first.Manifest.Shards;
        foreach (var (folder, m) in found)
        {
            if (m.Shards != n)
                throw new InvalidDataException($"Shard '{folder}' is one of {m.Shards} shards, but '{first.Folder}' is one of {n}.");
            if (m.Command != first.Manifest.Command)
                throw new InvalidDataException($"Shard '{folder}' was made by '{m.Command}', but '{first.Folder}' by '{first.Manifest.Command}'.");
            foreach (var key in first.Manifest.Settings.Keys.Union(m.Settings.Keys).Order(StringComparer.Ordinal))
            {
                first.Manifest.Settings.TryGetValue(key, out var expected);
                m.Settings.TryGetValue(key, out var actual);
                if (expected != actual)
                    throw new InvalidDataException($"Shard '{folder}' was made with {key} = '{actual}', but '{first.Folder}' with '{expected}'.");
            }
        }
        var missing = Enumerable.Range(0, n).Where(k => !found.Any(s => s.Manifest.Shard == k)).ToList();
        if (missing.Count > 0)
            throw new InvalidDataException(string.Create(CultureInfo.InvariantCulture,
                $"{missing.Count} of {n} shards are missing or incomplete in '{shardFolder}': {string.Join(", ", missing.Take(10).Select(k => $"{k}-of-{n}"))}{(missing.Count > 10 ? ", ..." : "")}."));
        return found.OrderBy(s => s.Manifest.Shard).ToList();
    }
}
