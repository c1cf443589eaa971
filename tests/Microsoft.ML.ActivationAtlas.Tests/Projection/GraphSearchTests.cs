using Microsoft.ML.ActivationAtlas.Projection;
using Microsoft.ML.ActivationAtlas.Projection.Internal;
using Microsoft.ML.ActivationAtlas.Projection.Knn;
using Xunit.Abstractions;

namespace Microsoft.ML.ActivationAtlas.Tests.Projection;

public class GraphSearchTests(ITestOutputHelper output)
{
    [Theory]
    [InlineData(DistanceMetric.Euclidean)]
    [InlineData(DistanceMetric.Cosine)]
    public void TransformSearch_FindsTheNeighboursOfNewFashionMnistImages(DistanceMetric metric)
    {
        // 3,000 training images indexed; 1,000 other images (never seen by the index) searched.
        const int train = 3000, fresh = 1000, dims = 784, k = 15;
        var (data, _) = ProjectionTestData.Fashion(train);
        var (queries, _) = ProjectionTestData.Fashion(fresh, skip: train);
        var prepared = new PreparedData(data, train, dims, metric);
        var graph = NNDescent.Build(prepared, k, NNDescentSettings.For(train, k, 5), CancellationToken.None);
        var search = new GraphSearch(prepared, graph, seed: 5);
        var q = prepared.PrepareQueries(queries, fresh, "queries");
        var found = search.Query(q, fresh, k, CancellationToken.None);
        var exact = ExactKnn.Query(prepared, q, fresh, k, CancellationToken.None);
        double recall = found.RecallAgainst(exact);
        // pynndescent 0.5.8 (Debian) on the same images: mean degree 4.79 / 4.10, recall 0.991 / 0.995 (euclidean / cosine).
        output.WriteLine($"{metric}: recall {recall:0.0000}, mean search-graph degree {search.MeanDegree:0.00}");
        Assert.True(recall >= 0.98, $"transform search recall {recall:0.0000} < 0.98 ({metric})");
        // Every returned neighbour's distance is its true distance to the query, computed here directly in double
        // precision from the raw pixels, and each row is in increasing order.
        for (int i = 0; i < fresh; i++)
        {
            for (int t = 0; t < k; t++)
            {
                int j = found.Indices[i * k + t];
                Assert.InRange(j, 0, train - 1);
                double direct = DirectDistance(queries.AsSpan(i * dims, dims), data.AsSpan(j * dims, dims), metric);
                Assert.True(Math.Abs(found.Distances[i * k + t] - direct) <= 1e-4 * Math.Max(1, direct),
                    $"query {i}, neighbour {t} (row {j}): returned distance {found.Distances[i * k + t]}, direct {direct} ({metric})");
                if (t > 0)
                    Assert.True(found.Distances[i * k + t] >= found.Distances[i * k + t - 1], $"query {i}: distances not increasing at {t}");
            }
        }
        // Diversification leaves far fewer edges than the kNN graph's k per row (about 4 to 5 here).
        Assert.True(search.MeanDegree < 8, $"mean degree {search.MeanDegree:0.00}");
    }

    /// <summary>Euclidean or cosine distance (1 - cos) of two raw rows, in double precision.</summary>
    private static double DirectDistance(ReadOnlySpan<float> x, ReadOnlySpan<float> y, DistanceMetric metric)
    {
        double dot = 0, xx = 0, yy = 0, d2 = 0;
        for (int d = 0; d < x.Length; d++)
        {
            dot += (double)x[d] * y[d];
            xx += (double)x[d] * x[d];
            yy += (double)y[d] * y[d];
            d2 += ((double)x[d] - y[d]) * ((double)x[d] - y[d]);
        }
        return metric == DistanceMetric.Cosine ? 1 - dot / Math.Sqrt(xx * yy) : Math.Sqrt(d2);
    }

    [Fact]
    public void SearchGraph_DiversifiesAndCapsDegree()
    {
        // Points on a line, 0, 1, 2, ... : a row's farther neighbours on one side are all nearer to its nearest
        // neighbour on that side, so diversification leaves the path 0 - 1 - 2 - ... - 7.
        const int n = 8, k = 5;
        var data = Enumerable.Range(0, n).Select(i => (float)i).ToArray();
        var prepared = new PreparedData(data, n, 1, DistanceMetric.Euclidean);
        var graph = ExactKnn.Build(prepared, k, CancellationToken.None);
        var search = SearchGraph.Build(prepared, graph);
        for (int i = 0; i < n; i++)
        {
            var expected = new[] { i - 1, i + 1 }.Where(j => j >= 0 && j < n).ToArray();
            Assert.Equal(expected, search.Neighbors.AsSpan(search.RowPointers[i], search.RowPointers[i + 1] - search.RowPointers[i]).ToArray());
        }

        // A star: a centre (row 0) and 30 points r_i e_i on the axes of 30-D space (r_i = 1 + 0.01 i, all distinct).
        // Each point's nearest neighbour is the centre, and every other point is nearer to the centre than to it, so
        // diversification leaves each point only the centre; the centre gets all 30 as reverse edges, and the degree
        // cap keeps the cap + 1 = 9 nearest of them,
        // as pynndescent's degree_prune does (every edge not longer than the (cap + 1)-th shortest).
        const int arms = 30;
        var star = new float[(arms + 1) * arms];
        for (int i = 0; i < arms; i++)
            star[(i + 1) * arms + i] = 1f + 0.01f * i;
        var starData = new PreparedData(star, arms + 1, arms, DistanceMetric.Euclidean);
        var starSearch = SearchGraph.Build(starData, ExactKnn.Build(starData, k, CancellationToken.None));
        int cap = SearchGraph.DegreeCap(k);
        Assert.Equal(8, cap);
        Assert.Equal(Enumerable.Range(1, cap + 1).ToArray(), starSearch.Neighbors.AsSpan(0, starSearch.RowPointers[1]).ToArray());
        for (int i = 1; i <= arms; i++)
            Assert.Equal(new[] { 0 }, starSearch.Neighbors.AsSpan(starSearch.RowPointers[i], starSearch.RowPointers[i + 1] - starSearch.RowPointers[i]).ToArray());
    }
}
