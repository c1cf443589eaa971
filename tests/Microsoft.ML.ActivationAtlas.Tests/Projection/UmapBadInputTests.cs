using Microsoft.ML.ActivationAtlas.Projection.Quality;
using Microsoft.ML.ActivationAtlas.Projection.Umap;

namespace Microsoft.ML.ActivationAtlas.Tests.Projection;

public class UmapBadInputTests
{
    [Theory]
    [InlineData(float.NaN)]
    [InlineData(float.PositiveInfinity)]
    public void NonFiniteValue_IsRejectedNamingRowAndColumn(float bad)
    {
        var (data, _) = ProjectionTestData.Fashion(100);
        data[37 * 784 + 12] = bad;
        var e = Assert.Throws<ArgumentException>(() => new UmapReducer().Fit(data, 100, 784));
        Assert.Contains("row 37, column 12", e.Message);
    }

    [Fact]
    public void FewerRowsThanNeighborsPlusOne_IsRejected()
    {
        var (data, _) = ProjectionTestData.Fashion(15);
        var e = Assert.Throws<ArgumentException>(() => new UmapReducer().Fit(data, 15, 784));
        Assert.Contains("at least 16 rows", e.Message);
        // 16 rows work.
        var (ok, _) = ProjectionTestData.Fashion(16);
        Assert.All(new UmapReducer(new UmapOptions { Epochs = 50 }).Fit(ok, 16, 784).Embedding, v => Assert.True(float.IsFinite(v)));
    }

    [Fact]
    public void AllIdenticalRows_AreRejected()
    {
        var data = new float[50 * 8];
        Array.Fill(data, 0.5f);
        var e = Assert.Throws<ArgumentException>(() => new UmapReducer().Fit(data, 50, 8));
        Assert.Contains("identical", e.Message);
    }

    [Fact]
    public void DuplicateRows_GetFiniteCoincidentPositions()
    {
        // 300 images, each present twice (zero distances everywhere).
        var (half, _) = ProjectionTestData.Fashion(300);
        var data = half.Concat(half).ToArray();
        var model = new UmapReducer(new UmapOptions { Epochs = 200 }).Fit(data, 600, 784);
        Assert.All(model.Embedding, v => Assert.True(float.IsFinite(v)));
        double extent = ProjectionTestData.Extent(model.Embedding, 2);
        var copies = model.Embedding.AsSpan(600).ToArray();
        Assert.True(ProjectionTestData.MeanRowDistance(model.Embedding, copies, 2, 300) < 0.05 * extent);
    }

    [Fact]
    public void ConstantColumn_IsHarmless()
    {
        var (data, labels) = ProjectionTestData.Blobs(400, 10, 4, seed: 2);
        for (int i = 0; i < 400; i++)
            data[i * 10 + 3] = 7f;
        foreach (var metric in new[] { Microsoft.ML.ActivationAtlas.Projection.DistanceMetric.Euclidean, Microsoft.ML.ActivationAtlas.Projection.DistanceMetric.Cosine })
        {
            var model = new UmapReducer(new UmapOptions { Epochs = 200, Metric = metric }).Fit(data, 400, 10);
            Assert.All(model.Embedding, v => Assert.True(float.IsFinite(v)));
            Assert.True(EmbeddingQuality.KnnAccuracy(model.Embedding, 2, labels) >= 0.95);
        }
    }

    [Fact]
    public void Transform_WithWrongRowSize_IsRejected()
    {
        var (data, _) = ProjectionTestData.Fashion(100);
        var model = new UmapReducer(new UmapOptions { Epochs = 20 }).Fit(data, 100, 784);
        var e = Assert.Throws<ArgumentException>(() => model.Transform(new float[10 * 783], 10));
        Assert.Contains("784", e.Message);
        var nan = data.AsSpan(0, 2 * 784).ToArray();
        nan[5] = float.NaN;
        Assert.Throws<ArgumentException>(() => model.Transform(nan, 2));
    }

    [Fact]
    public void OptionsOutOfRange_AreRejectedByName()
    {
        Assert.Contains("Neighbors", Assert.Throws<ArgumentOutOfRangeException>(() => new UmapReducer(new UmapOptions { Neighbors = 1 })).Message);
        Assert.Contains("MinDist", Assert.Throws<ArgumentOutOfRangeException>(() => new UmapReducer(new UmapOptions { MinDist = 3f })).Message);
    }
}
