using Microsoft.ML.ActivationAtlas.Projection;
using Microsoft.ML.ActivationAtlas.Projection.Internal;
using Microsoft.ML.ActivationAtlas.Projection.Knn;

namespace Microsoft.ML.ActivationAtlas.Tests.Projection;

/// <summary>The breadth-first forest builder that seeds NN-descent.</summary>
public class RandomProjectionForestTests
{
    [Theory]
    [InlineData(DistanceMetric.Euclidean)]
    [InlineData(DistanceMetric.Cosine)]
    public void Forest_LeavesPartitionTheRows_AreSmall_AndHoldNearbyRows(DistanceMetric metric)
    {
        const int n = 3000, dims = 784, leafSize = 15;
        var (raw, _) = ProjectionTestData.Fashion(n);
        var data = new PreparedData(raw, n, dims, metric);
        var trees = RandomProjectionForest.Build(data, 0, 5, leafSize, seed: 11, new ParallelOptions());
        Assert.Equal(5, trees.Length);
        var rng = new Random(3);
        double randomPairs = Enumerable.Range(0, 2000).Average(_ => (double)data.Reduced(rng.Next(n), rng.Next(n)));
        foreach (var tree in trees)
        {
            var seen = new int[n];
            double within = 0;
            long pairs = 0;
            for (int l = 0; l < tree.LeafCount; l++)
            {
                var leaf = tree.Leaf(l);
                Assert.InRange(leaf.Length, 1, leafSize);
                foreach (int r in leaf)
                    seen[r]++;
                for (int a = 0; a < leaf.Length; a++)
                    for (int b = a + 1; b < leaf.Length; b++, pairs++)
                        within += data.Reduced(leaf[a], leaf[b]);
            }
            Assert.All(seen, c => Assert.Equal(1, c));
            // A leaf gathers rows from one small region: its pairs are far closer than random pairs.
            Assert.True(within / pairs < 0.5 * randomPairs, $"{metric}: within-leaf {within / pairs:0.000} vs random {randomPairs:0.000}");
        }
    }

    [Fact]
    public void Forest_IsTheSameForAnyThreadCount_AndDiffersBetweenTrees()
    {
        const int n = 2000, dims = 784;
        var (raw, _) = ProjectionTestData.Fashion(n);
        var data = new PreparedData(raw, n, dims, DistanceMetric.Euclidean);
        var parallel = RandomProjectionForest.Build(data, 4, 3, 12, seed: 5, new ParallelOptions());
        var serial = RandomProjectionForest.Build(data, 4, 3, 12, seed: 5, new ParallelOptions { MaxDegreeOfParallelism = 1 });
        for (int t = 0; t < 3; t++)
        {
            Assert.Equal(serial[t].Indices, parallel[t].Indices);
            Assert.Equal(serial[t].LeafCount, parallel[t].LeafCount);
        }
        Assert.NotEqual(parallel[0].Indices, parallel[1].Indices);
        // Tree 5 of the forest is the same tree whether it is built in a group starting at 4 or at 5.
        var alone = RandomProjectionForest.Build(data, 5, 1, 12, seed: 5, new ParallelOptions());
        Assert.Equal(parallel[1].Indices, alone[0].Indices);
    }

    [Fact]
    public void Forest_OfIdenticalRows_SplitsAtRandomIntoSmallLeaves()
    {
        const int n = 500, dims = 8;
        var raw = new float[n * dims];
        Array.Fill(raw, 0.25f);
        var data = new PreparedData(raw, n, dims, DistanceMetric.Euclidean);
        var tree = RandomProjectionForest.Build(data, 0, 1, 10, seed: 1, new ParallelOptions())[0];
        int total = 0;
        for (int l = 0; l < tree.LeafCount; l++)
        {
            Assert.InRange(tree.Leaf(l).Length, 1, 10);
            total += tree.Leaf(l).Length;
        }
        Assert.Equal(n, total);
    }
}
