using System.Runtime.Intrinsics;
using Microsoft.ML.ActivationAtlas.Projection.Internal;
using Xunit;

namespace Microsoft.ML.ActivationAtlas.Tests.Projection;

/// <summary>The polynomial pow that the UMAP gradients use, against the library pow.</summary>
public sealed class FastPowTests
{
    [Theory]
    [InlineData(0.8950607f)] // min_dist 0.1
    [InlineData(0.8006f)] // min_dist 0.01
    [InlineData(0.5f)]
    [InlineData(1f)]
    [InlineData(1.9f)]
    public void Pow_MatchesMathPowWithinAFewMillionths_OverTheSquaredDistancesOfALayout(float exponent)
    {
        var rng = new Random(7);
        double worst = 0;
        var xs = new float[8];
        for (int i = 0; i < 200_000; i++)
        {
            // Squared distances in a layout span about 1e-12 .. 1e6.
            float x = (float)Math.Exp(rng.NextDouble() * 41.5 - 27.6);
            double exact = Math.Pow(x, exponent);
            worst = Math.Max(worst, Math.Abs(FastPow.Pow(x, exponent) - exact) / exact);
            xs[i % 8] = x;
            if (i % 8 == 7)
            {
                var lanes = FastPow.Pow(Vector256.Create<float>(xs), Vector256.Create(exponent));
                for (int l = 0; l < 8; l++)
                    Assert.Equal(FastPow.Pow(xs[l], exponent), lanes[l]);
            }
        }
        // log2's absolute error is multiplied by the exponent before exp2.
        double bound = 3.5e-6 * Math.Max(1f, exponent);
        Assert.True(worst < bound, $"worst relative error {worst:G3}, bound {bound:G3}");
        Assert.True(Math.Abs(FastPow.Pow(1f, exponent) - 1f) < bound, "pow(1) should be 1");
    }

    [Fact]
    public void Pow_OfZero_IsNegligibleAndFinite()
    {
        float p = FastPow.Pow(0f, 0.8950607f);
        Assert.True(p >= 0f && p < 1e-30f, $"pow(0) = {p}");
        Assert.True(float.IsFinite(FastPow.Pow(Vector256<float>.Zero, Vector256.Create(0.9f))[0]));
    }
}
