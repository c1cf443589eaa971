using Microsoft.ML.ActivationAtlas.Projection;
using Microsoft.ML.ActivationAtlas.Projection.Quality;
using Microsoft.ML.ActivationAtlas.Projection.Tsne;

namespace Microsoft.ML.ActivationAtlas.Tests.Projection;

public class TsneTests
{
    [Fact]
    public void TwoD_FashionMnistIsTrustworthy()
    {
        var (data, labels) = ProjectionTestData.Fashion(1000);
        var model = new TsneReducer(new TsneOptions { Iterations = 500 }).Fit(data, 1000, 784);
        double trust = EmbeddingQuality.Trustworthiness(data, 784, model.Embedding, 2, 15);
        double acc = EmbeddingQuality.KnnAccuracy(model.Embedding, 2, labels);
        Assert.True(trust >= 0.95, $"trustworthiness {trust:0.0000}");
        Assert.True(acc >= 0.70, $"10-NN accuracy {acc:0.0000}");
    }

    [Theory]
    [InlineData(DistanceMetric.Euclidean)]
    [InlineData(DistanceMetric.Cosine)]
    public void OneD_SeparatesClustersAlongTheAxis(DistanceMetric metric)
    {
        var (data, labels) = ProjectionTestData.Blobs(450, 20, 3, seed: 4);
        var model = new TsneReducer(new TsneOptions { Components = 1, Iterations = 500, Metric = metric }).Fit(data, 450, 20);
        Assert.Equal(450, model.Embedding.Length);
        Assert.All(model.Embedding, v => Assert.True(float.IsFinite(v)));
        // Each cluster occupies its own interval of the axis.
        var ranges = Enumerable.Range(0, 3).Select(c =>
        {
            var xs = Enumerable.Range(0, 450).Where(i => labels[i] == c).Select(i => model.Embedding[i]).ToArray();
            return (Min: xs.Min(), Max: xs.Max());
        }).OrderBy(r => r.Min).ToArray();
        Assert.True(ranges[0].Max < ranges[1].Min && ranges[1].Max < ranges[2].Min, "cluster intervals overlap on the 1-D axis");
        Assert.True(EmbeddingQuality.KnnAccuracy(model.Embedding, 1, labels) >= 0.99);
    }

    [Fact]
    public void IsDeterministicPerSeed()
    {
        var (data, _) = ProjectionTestData.Fashion(400);
        var options = new TsneOptions { Iterations = 300, Seed = 9 };
        var a = new TsneReducer(options).Fit(data, 400, 784);
        var b = new TsneReducer(options).Fit(data, 400, 784);
        Assert.Equal(a.Embedding, b.Embedding);
    }

    [Fact]
    public void Place_CopiesTrainingRowsAndInterpolatesNewOnes()
    {
        var (data, labels) = ProjectionTestData.Fashion(600);
        var model = new TsneReducer(new TsneOptions { Iterations = 400 }).Fit(data, 600, 784);
        var placed = model.Place(data.AsSpan(0, 20 * 784).ToArray(), 20);
        Assert.Equal(model.Embedding.AsSpan(0, 40).ToArray(), placed);
        var (fresh, freshLabels) = ProjectionTestData.Fashion(200, skip: 600);
        var layout = model.Place(fresh, 200);
        Assert.All(layout, v => Assert.True(float.IsFinite(v)));
    }

    [Fact]
    public void BadInput_GetsClearErrors()
    {
        var (data, _) = ProjectionTestData.Fashion(100);
        data[3] = float.NaN;
        Assert.Contains("row 0, column 3", Assert.Throws<ArgumentException>(() => new TsneReducer().Fit(data, 100, 784)).Message);
        var same = new float[40 * 4];
        Assert.Contains("identical", Assert.Throws<ArgumentException>(() => new TsneReducer().Fit(same, 40, 4)).Message);
        var (small, _) = ProjectionTestData.Fashion(20);
        Assert.Contains("Perplexity", Assert.Throws<ArgumentException>(() => new TsneReducer().Fit(small, 20, 784)).Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => new TsneReducer(new TsneOptions { Components = 3 }));
    }
}
