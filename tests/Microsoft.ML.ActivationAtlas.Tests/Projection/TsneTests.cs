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
        // Each new row lands among the layout positions of its exact nearest training rows.
        var (near, random) = ProjectionTestData.PlacementSpread(data, fresh, 784, model.Embedding, layout, 2);
        Assert.True(near < 0.1 * random, $"new rows sit {near:0.000} from their exact neighbours' positions; random positions are {random:0.000} apart");
    }

    /// <summary>
    /// Tiny subsets of real images, the size of a class pair in <c>atlas compare</c>: 20, 40 and 63 Fashion-MNIST
    /// images drawn at random (8 draws each), laid out in 1-D and 2-D with the default settings. With scikit-learn's
    /// learning-rate floor of 50 and no step limit, 40 images put two points at -1537 and 798 with the rest within
    /// +-200 (max |y - median| 6.7 IQRs), and 20 images spread over a range of hundreds in 1-D, neighbourhoods lost
    /// (trustworthiness(3) about 0.56).
    /// </summary>
    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    public void TinySubsets_HaveNoOutliersAndKeepNeighbourhoods(int components)
    {
        var (pool, _) = ProjectionTestData.Fashion(400);
        foreach (int n in new[] { 20, 40, 63 })
        {
            double trust = 0;
            for (int draw = 0; draw < 8; draw++)
            {
                var rng = new Random(draw * 31 + n);
                var pick = Enumerable.Range(0, 400).OrderBy(_ => rng.Next()).Take(n).ToArray();
                var data = pick.SelectMany(i => pool.AsSpan(i * 784, 784).ToArray()).ToArray();
                var layout = new TsneReducer(new TsneOptions { Components = components, Seed = draw }).Fit(data, n, 784).Embedding;
                for (int d = 0; d < components; d++)
                {
                    var axis = Enumerable.Range(0, n).Select(i => (double)layout[i * components + d]).OrderBy(v => v).ToArray();
                    double q1 = Quantile(axis, 0.25), median = Quantile(axis, 0.5), q3 = Quantile(axis, 0.75);
                    double worst = axis.Max(v => Math.Abs(v - median));
                    Assert.True(worst <= 3 * (q3 - q1), $"n {n}, draw {draw}, axis {d}: a point {worst:0.0} from the median, IQR {q3 - q1:0.00}");
                }
                trust += EmbeddingQuality.Trustworthiness(data, 784, layout, components, 3) / 8;
            }
            double floor = components == 1 ? 0.85 : 0.93;
            Assert.True(trust >= floor, $"n {n}, {components}-D: mean trustworthiness(3) {trust:0.000} < {floor}");
        }

        static double Quantile(double[] sorted, double p)
        {
            double pos = p * (sorted.Length - 1);
            int lo = (int)pos;
            return sorted[lo] + (pos - lo) * (sorted[Math.Min(lo + 1, sorted.Length - 1)] - sorted[lo]);
        }
    }

    [Fact]
    public void BadInput_GetsClearErrors()
    {
        var (data, _) = ProjectionTestData.Fashion(100);
        data[3] = float.NaN;
        Assert.Contains("row 0, column 3", Assert.Throws<ArgumentException>(() => new TsneReducer().Fit(data, 100, 784)).Message);
        var same = new float[40 * 4];
        Assert.Contains("identical", Assert.Throws<ArgumentException>(() => new TsneReducer().Fit(same, 40, 4)).Message);
        // Fewer rows than 3 * perplexity + 1: the perplexity is lowered to (rows - 1) / 3, as openTSNE does.
        var (small, _) = ProjectionTestData.Fashion(20);
        Assert.Equal(19 / 3.0, TsneReducer.EffectivePerplexity(30, 20), 10);
        Assert.All(new TsneReducer().Fit(small, 20, 784).Embedding, v => Assert.True(float.IsFinite(v)));
        Assert.Throws<ArgumentOutOfRangeException>(() => new TsneReducer(new TsneOptions { MaxStepNorm = 0 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => new TsneReducer(new TsneOptions { Components = 3 }));
    }
}
