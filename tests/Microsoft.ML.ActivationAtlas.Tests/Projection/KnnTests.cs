using Microsoft.ML.ActivationAtlas.Projection;
using Microsoft.ML.ActivationAtlas.Projection.Knn;

namespace Microsoft.ML.ActivationAtlas.Tests.Projection;

public class KnnTests
{
    [Fact]
    public void Exact_MatchesBruteForceAndPutsSelfFirst()
    {
        var (data, _) = ProjectionTestData.Fashion(600);
        const int dims = 784, k = 10;
        var knn = NearestNeighbors.Exact(data, 600, dims, k);
        for (int i = 0; i < 600; i += 37)
        {
            Assert.Equal(i, knn.Indices[i * k]);
            Assert.Equal(0f, knn.Distances[i * k]);
            var all = Enumerable.Range(0, 600).Where(j => j != i)
                .Select(j => Math.Sqrt(Enumerable.Range(0, dims).Sum(d => Math.Pow(data[i * dims + d] - data[j * dims + d], 2))))
                .OrderBy(x => x).ToArray();
            for (int t = 1; t < k; t++)
                Assert.Equal(all[t - 1], knn.Distances[i * k + t], 3);
        }
    }

    [Theory]
    [InlineData(DistanceMetric.Euclidean)]
    [InlineData(DistanceMetric.Cosine)]
    public void NNDescent_RecallAgainstExactIsHigh(DistanceMetric metric)
    {
        var (data, _) = ProjectionTestData.Fashion(3000);
        const int k = 15;
        var exact = NearestNeighbors.Exact(data, 3000, 784, k, metric);
        var approx = NearestNeighbors.Approximate(data, 3000, 784, k, metric, seed: 7);
        double recall = approx.RecallAgainst(exact);
        Assert.True(recall >= 0.97, $"NN-descent recall {recall:0.0000} < 0.97 ({metric})");
        // Every row: itself first, then its neighbours in increasing distance.
        for (int i = 0; i < 3000; i++)
        {
            Assert.Equal(i, approx.Indices[i * k]);
            for (int t = 1; t < k; t++)
                Assert.True(approx.Distances[i * k + t] >= approx.Distances[i * k + t - 1], $"row {i}: distance {t} is below distance {t - 1} ({metric})");
        }
    }

    [Fact]
    public void NNDescent_IsDeterministicForASeed()
    {
        var (data, _) = ProjectionTestData.Fashion(2000);
        var a = NearestNeighbors.Approximate(data, 2000, 784, 10, seed: 3);
        var b = NearestNeighbors.Approximate(data, 2000, 784, 10, seed: 3);
        Assert.Equal(a.Indices, b.Indices);
        Assert.Equal(a.Distances, b.Distances);
    }

    [Fact]
    public void Cosine_ZeroRowIsAtDistanceOne()
    {
        var data = new float[] { 0, 0, 1, 0, 0, 1, 1, 1 };
        var knn = NearestNeighbors.Exact(data, 4, 2, 4, DistanceMetric.Cosine);
        Assert.Equal(0, knn.Indices[0]);
        Assert.All(knn.Distances.AsSpan(1, 3).ToArray(), d => Assert.Equal(1f, d, 5));
    }
}
