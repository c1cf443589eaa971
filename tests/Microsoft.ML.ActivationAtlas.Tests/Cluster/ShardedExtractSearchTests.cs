using System.Text.Json.Nodes;
using Microsoft.ML.ActivationAtlas.Tests.Cli;

namespace Microsoft.ML.ActivationAtlas.Tests.Cluster;

/// <summary>
/// <c>atlas extract --shard k/n</c>, <c>atlas search --shard k/n</c> and <c>atlas build --extract-only --shard k/n</c>
/// on real CIFAR-10 images and ResNet18: merged (or built) from the shards, the files equal one process's.
/// </summary>
public sealed class ShardedExtractSearchTests(ShardedJobFixture fixture) : IClassFixture<ShardedJobFixture>
{
    private readonly string _dir = Path.Combine(fixture.Root, "extract-search-" + Guid.NewGuid().ToString("N"));

    // Batches of 8 over shards of 20 rows: the shards' batches are not the single run's.
    private string[] Extract(string output, params string[] extra) =>
        ["extract", "--model", "resnet18", "--layer", "ReLU393_Output_0", "--images", fixture.Images, "--out", output, "--batch", "8", "--seed", "3", .. extra];

    [Fact]
    public void MergedExtractionShardsEqualOneProcessByteForByte()
    {
        string single = Path.Combine(_dir, "single");
        var (code, err) = AtlasTool.Run(Extract(Path.Combine(single, "acts.npy")));
        Assert.True(code == 0, err);

        string shards = Path.Combine(_dir, "acts.npy.shards");
        foreach (int k in new[] { 2, 0, 1 })
        {
            (code, err) = AtlasTool.Run(Extract(Path.Combine(shards, $"{k}-of-3"), "--shard", $"{k}/3"));
            Assert.True(code == 0, err);
            Assert.True(File.Exists(Path.Combine(shards, $"{k}-of-3", "shard.json")));
            Assert.True(File.Exists(Path.Combine(shards, $"{k}-of-3", "activations.npy")));
        }
        string merged = Path.Combine(_dir, "merged");
        (code, err) = AtlasTool.Run("merge", "--shards", shards, "--out", Path.Combine(merged, "acts.npy"));
        Assert.True(code == 0, err);
        ShardedJobFixture.AssertSameFiles(single, merged);
        Assert.Equal(60 * 512 * 4 + 128, new FileInfo(Path.Combine(merged, "acts.npy")).Length);

        // Merging again into the same output is refused.
        (code, err) = AtlasTool.Run("merge", "--shards", shards, "--out", Path.Combine(merged, "acts.npy"));
        Assert.Equal(1, code);
        Assert.Contains("already exists", err);
    }

    [Fact]
    public void ExtractionMergeNamesTheMissingOrMismatchedShardAndWritesNothing()
    {
        string shards = Path.Combine(_dir, "bad.shards");
        Assert.Equal(0, AtlasTool.Run(Extract(Path.Combine(shards, "0-of-3"), "--shard", "0/3")).ExitCode);
        Assert.Equal(0, AtlasTool.Run(Extract(Path.Combine(shards, "2-of-3"), "--shard", "2/3")).ExitCode);
        string merged = Path.Combine(_dir, "merged", "acts.npy");
        var (code, err) = AtlasTool.Run("merge", "--shards", shards, "--out", merged);
        Assert.Equal(1, code);
        Assert.Contains("1-of-3", err);
        Assert.Contains("missing", err);
        Assert.False(Directory.Exists(Path.GetDirectoryName(merged)) && Directory.EnumerateFileSystemEntries(Path.GetDirectoryName(merged)!).Any());

        // Shard 1 extracted with another seed: refused, naming the shard and the setting.
        Assert.Equal(0, AtlasTool.Run(["extract", "--model", "resnet18", "--layer", "ReLU393_Output_0", "--images", fixture.Images,
            "--out", Path.Combine(shards, "1-of-3"), "--batch", "8", "--seed", "4", "--shard", "1/3"]).ExitCode);
        (code, err) = AtlasTool.Run("merge", "--shards", shards, "--out", merged);
        Assert.Equal(1, code);
        Assert.Contains("1-of-3", err);
        Assert.Contains("seed", err);
        Assert.False(File.Exists(merged));
    }

    [Fact]
    public void MergedSearchShardsEqualOneProcessWithTiesBrokenAsOneProcessBreaksThem()
    {
        // The unseen images plus copies of the ships under 'dup/': each copy scores exactly as its original, so the
        // top 10 for 'ship' holds ties that span shards; one process keeps the earlier path first.
        string images = Path.Combine(_dir, "images");
        foreach (var f in Directory.GetFiles(fixture.Images, "*", SearchOption.AllDirectories))
        {
            string to = Path.Combine(images, Path.GetRelativePath(fixture.Images, f));
            Directory.CreateDirectory(Path.GetDirectoryName(to)!);
            File.Copy(f, to);
            if (Path.GetFileName(Path.GetDirectoryName(f)) == "ship")
            {
                Directory.CreateDirectory(Path.Combine(images, "dup"));
                File.Copy(f, Path.Combine(images, "dup", Path.GetFileName(f)));
            }
        }
        string[] Search(string output, params string[] extra) =>
            ["search", "--atlas", fixture.Atlas, "--class", "ship", "--images", images, "--out", output, "--top", "10", .. extra];

        string single = Path.Combine(_dir, "single");
        var (code, err) = AtlasTool.Run(Search(single));
        Assert.True(code == 0, err);
        string shards = Path.Combine(_dir, "s.shards");
        foreach (int k in new[] { 1, 2, 0 })
        {
            (code, err) = AtlasTool.Run(Search(Path.Combine(shards, $"{k}-of-3"), "--shard", $"{k}/3"));
            Assert.True(code == 0, err);
        }
        string merged = Path.Combine(_dir, "merged");
        (code, err) = AtlasTool.Run("merge", "--shards", shards, "--out", merged);
        Assert.True(code == 0, err);

        var results = JsonNode.Parse(File.ReadAllText(Path.Combine(single, "search.json")))!["results"]!.AsArray();
        var scores = results.Select(r => r!["score"]!.GetValue<float>()).ToList();
        Assert.True(scores.Distinct().Count() < scores.Count, "the top 10 should hold tied copies");
        Assert.Contains(results, r => r!["path"]!.GetValue<string>().Contains("/dup/", StringComparison.Ordinal));
        AssertSameSearch(single, merged);
    }

    [Fact]
    public void ShardedBuildExtractionIsTheBuildsCacheAndGivesTheSameAtlas()
    {
        string[] Build(string output, params string[] extra) =>
            ["build", "--model", "resnet18", "--layer", "ReLU393_Output_0", "--images", fixture.Images, "--out", output,
             "--grids", "4,8", "--icon-size", "16", "--page-rows", "16", "--batch", "8", "--head", "train", .. extra];

        string plain = Path.Combine(_dir, "plain");
        var (code, err) = AtlasTool.Run(Build(plain));
        Assert.True(code == 0, err);

        // 60 rows are 4 pages of 16: shards 0 and 1 take one page each, shard 2 two.
        string sharded = Path.Combine(_dir, "sharded");
        foreach (int k in new[] { 2, 0, 1 })
        {
            (code, err) = AtlasTool.Run(Build(sharded, "--shard", $"{k}/3"));
            Assert.True(code == 0, err);
            Assert.Contains($"extraction shard {k}/3", err);
            Assert.False(Directory.Exists(sharded));
        }
        var cache = Path.Combine(sharded + ".partial", "cache");
        Assert.Equal(4, Directory.GetFiles(cache, "activations.page*.json").Length);
        Assert.Equal(4, Directory.GetFiles(cache, "head-features.page*.json").Length);

        // A shard run again finds its pages and computes nothing.
        (code, err) = AtlasTool.Run(Build(sharded, "--shard", "2/3"));
        Assert.True(code == 0, err);
        Assert.Contains("2 pages (0 computed, 2 already stored)", err);

        // The build reuses every page: the network does not run for them.
        (code, err) = AtlasTool.Run(Build(sharded));
        Assert.True(code == 0, err);
        Assert.Contains("activations  reused (60 x 512 from 4 stored pages)", err);
        ShardedJobFixture.AssertSameFiles(plain, sharded);
    }

    [Fact]
    public void SubmitWritesScriptsForExtractSearchAndBuild()
    {
        string dir = Path.Combine(_dir, "dry");
        foreach (var (command, output) in new[] { ("extract", Path.Combine(dir, "acts.npy")), ("search", Path.Combine(dir, "found")), ("build", Path.Combine(dir, "atlas")) })
        {
            string[] rest = command switch
            {
                "extract" => ["extract", "--model", "resnet18", "--layer", "ReLU393_Output_0", "--images", fixture.Images, "--out", output],
                "search" => ["search", "--atlas", fixture.Atlas, "--class", "ship", "--images", fixture.Images, "--out", output],
                _ => ["build", "--model", "resnet18", "--layer", "ReLU393_Output_0", "--images", fixture.Images, "--out", output],
            };
            string scripts = Path.Combine(dir, command + "-scripts");
            var (code, err) = AtlasTool.Run(["submit", "slurm", "--shards", "3", "--gres", "gpu:1", "--dry-run", "--scripts", scripts, "--", .. rest]);
            Assert.True(code == 0, err);
            string array = File.ReadAllText(Path.Combine(scripts, "array.sbatch"));
            string merge = File.ReadAllText(Path.Combine(scripts, "merge.sbatch"));
            Assert.Contains("#SBATCH --array=0-2", array);
            Assert.Contains("#SBATCH --gres=gpu:1", array);
            Assert.Contains($" {command} ", array);
            if (command == "build")
            {
                // Tasks store pages in the build's work folder; the merge job is the build itself.
                Assert.Contains($"--out {output} --extract-only --shard \"$k/$n\"", array);
                Assert.DoesNotContain(".shards", array);
                Assert.Contains($" build --model resnet18 --layer ReLU393_Output_0 --images {fixture.Images} --out {output}\n", merge);
                Assert.DoesNotContain("--shard", merge);
                Assert.DoesNotContain(" merge ", merge);
            }
            else
            {
                Assert.Contains($"out={output}.shards/\"$k-of-$n\"", array);
                Assert.Contains("--out \"$out\" --shard \"$k/$n\"", array);
                Assert.Contains($"merge --shards {output}.shards --out {output}", merge);
            }
            Assert.False(Path.Exists(output));
        }
        var (c, e) = AtlasTool.Run("submit", "slurm", "--shards", "3", "--dry-run", "--", "build", "--model", "resnet18", "--layer", "x",
            "--images", fixture.Images, "--out", Path.Combine(dir, "b"), "--extract-only");
        Assert.Equal(2, c);
        Assert.Contains("--extract-only", e);
    }

    /// <summary>The same search files, but for the timing in search.json (the merge adds the shards' seconds).</summary>
    internal static void AssertSameSearch(string expected, string actual)
    {
        var a = Directory.GetFiles(expected, "*", SearchOption.AllDirectories).Select(f => Path.GetRelativePath(expected, f)).Order(StringComparer.Ordinal).ToArray();
        var b = Directory.GetFiles(actual, "*", SearchOption.AllDirectories).Select(f => Path.GetRelativePath(actual, f)).Order(StringComparer.Ordinal).ToArray();
        Assert.Equal(a, b);
        foreach (var f in a)
        {
            if (f == "search.json")
            {
                static string Untimed(string path)
                {
                    var json = JsonNode.Parse(File.ReadAllText(path))!.AsObject();
                    json.Remove("seconds");
                    json.Remove("imagesPerSecond");
                    return json.ToJsonString();
                }
                Assert.Equal(Untimed(Path.Combine(expected, f)), Untimed(Path.Combine(actual, f)));
            }
            else
                Assert.True(File.ReadAllBytes(Path.Combine(expected, f)).AsSpan().SequenceEqual(File.ReadAllBytes(Path.Combine(actual, f))), $"{f} differs");
        }
    }
}
