using Microsoft.ML.ActivationAtlas.Tests.Cli;

namespace Microsoft.ML.ActivationAtlas.Tests.Cluster;

/// <summary><c>atlas histogram --shard k/n</c> and <c>atlas merge</c> on real CIFAR-10 images and ResNet18.</summary>
public sealed class ShardedHistogramTests(ShardedJobFixture fixture) : IClassFixture<ShardedJobFixture>
{
    private readonly string _dir = Path.Combine(fixture.Root, "histogram-" + Guid.NewGuid().ToString("N"));

    private string[] Histogram(string output, params string[] extra) =>
        ["histogram", "--atlas", fixture.Atlas, "--images", fixture.Images, "--compare", fixture.Images, "--out", output, "--samples", "50", .. extra];

    [Fact]
    public void MergedShardsEqualOneProcessByteForByte()
    {
        string single = Path.Combine(_dir, "single");
        var (code, err) = AtlasTool.Run(Histogram(single));
        Assert.True(code == 0, err);

        string shards = Path.Combine(_dir, "h.shards");
        foreach (int k in new[] { 2, 0, 1 })
        {
            (code, err) = AtlasTool.Run(Histogram(Path.Combine(shards, $"{k}-of-3"), "--shard", $"{k}/3"));
            Assert.True(code == 0, err);
            Assert.True(File.Exists(Path.Combine(shards, $"{k}-of-3", "shard.json")));
        }
        string merged = Path.Combine(_dir, "merged");
        (code, err) = AtlasTool.Run("merge", "--shards", shards, "--out", merged);
        Assert.True(code == 0, err);
        ShardedJobFixture.AssertSameFiles(single, merged);
    }

    [Fact]
    public void MergeNamesTheMissingOrMismatchedShardAndWritesNothing()
    {
        string shards = Path.Combine(_dir, "bad.shards");
        Assert.Equal(0, AtlasTool.Run(Histogram(Path.Combine(shards, "0-of-3"), "--shard", "0/3")).ExitCode);
        Assert.Equal(0, AtlasTool.Run(Histogram(Path.Combine(shards, "2-of-3"), "--shard", "2/3")).ExitCode);
        string merged = Path.Combine(_dir, "merged");
        var (code, err) = AtlasTool.Run("merge", "--shards", shards, "--out", merged);
        Assert.Equal(1, code);
        Assert.Contains("1-of-3", err);
        Assert.Contains("missing", err);
        Assert.False(Directory.Exists(merged));

        // Shard 1 made with another sample size: refused, naming the shard and the setting.
        Assert.Equal(0, AtlasTool.Run(["histogram", "--atlas", fixture.Atlas, "--images", fixture.Images, "--compare", fixture.Images,
            "--out", Path.Combine(shards, "1-of-3"), "--samples", "40", "--shard", "1/3"]).ExitCode);
        (code, err) = AtlasTool.Run("merge", "--shards", shards, "--out", merged);
        Assert.Equal(1, code);
        Assert.Contains("1-of-3", err);
        Assert.Matches("(imageCount|compareCount)", err);
        Assert.False(Directory.Exists(merged));
    }

    [Fact]
    public void BadShardOptionIsAUsageError()
    {
        var (code, err) = AtlasTool.Run(Histogram(Path.Combine(_dir, "x"), "--shard", "3/3"));
        Assert.Equal(2, code);
        Assert.Contains("--shard", err);
    }
}
