using Microsoft.ML.ActivationAtlas.Projection.Umap;

namespace Microsoft.ML.ActivationAtlas.Tests.Projection;

public class CurveFitTests
{
    [Theory]
    [InlineData(0.1, 1.5769, 0.8951)]   // umap-learn find_ab_params(1.0, 0.1)
    [InlineData(0.01, 1.8956, 0.8006)]  // umap-learn find_ab_params(1.0, 0.01)
    [InlineData(0.05, 1.7502, 0.8421)]  // umap-learn find_ab_params(1.0, 0.05) (atlas setting)
    [InlineData(0.001, 1.9290, 0.7915)] // umap-learn find_ab_params(1.0, 0.001)
    public void FindAB_MatchesUmapLearn(double minDist, double expectedA, double expectedB)
    {
        var (a, b) = CurveFit.FindAB(1.0, minDist);
        Assert.Equal(expectedA, a, 3);
        Assert.Equal(expectedB, b, 3);
    }

    [Fact]
    public void FindAB_RejectsMinDistAboveSpread()
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => CurveFit.FindAB(1.0, 2.0));
        Assert.Contains("MinDist", e.Message);
    }
}
