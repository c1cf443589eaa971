using Microsoft.ML.ActivationAtlas.Cluster;

namespace Microsoft.ML.ActivationAtlas.Tests.Cluster;

public sealed class ShardTests
{
    [Theory]
    [InlineData(10, 3)]
    [InlineData(7, 7)]
    [InlineData(5, 8)]
    [InlineData(10000, 16)]
    public void ShardsCoverEveryRowOnceInOrder(int rows, int shards)
    {
        var items = Enumerable.Range(0, rows).ToArray();
        var joined = Enumerable.Range(0, shards).SelectMany(k => new Shard(k, shards).Take(items)).ToArray();
        Assert.Equal(items, joined);
        for (int k = 0; k < shards; k++)
        {
            var s = new Shard(k, shards);
            Assert.InRange(s.End(rows) - s.Start(rows), rows / shards, rows / shards + 1);
        }
    }

    [Theory]
    [InlineData("0/1", 0, 1)]
    [InlineData("3/4", 3, 4)]
    public void ParsesKOfN(string text, int k, int n) => Assert.Equal(new Shard(k, n), Shard.Parse(text));

    [Theory]
    [InlineData("4/4")]
    [InlineData("1/0")]
    [InlineData("-1/4")]
    [InlineData("1-4")]
    [InlineData("a/b")]
    public void RejectsBadShards(string text) => Assert.Contains("k/n", Assert.Throws<FormatException>(() => Shard.Parse(text)).Message);
}
