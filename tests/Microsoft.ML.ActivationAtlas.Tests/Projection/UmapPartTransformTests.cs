using Microsoft.ML.ActivationAtlas.Projection.Umap;

namespace Microsoft.ML.ActivationAtlas.Tests.Projection;

/// <summary>
/// UMAP's transform places each new row independently of the other rows transformed with it, so the parts of a set of
/// new rows land exactly where the whole set lands (what sharded concept histograms rely on).
/// </summary>
public sealed class UmapPartTransformTests
{
    [Fact]
    public void PartsOfANewSetLandExactlyWhereTheWholeSetLands()
    {
        var (train, _) = ProjectionTestData.Fashion(1500);
        var (fresh, _) = ProjectionTestData.Fashion(300, skip: 1500);
        var model = new UmapReducer(new UmapOptions { Seed = 3, Deterministic = true, Epochs = 60 }).Fit(train, 1500, 784);

        var whole = model.Transform(fresh, 300);
        var parts = new float[whole.Length];
        int[] cuts = [0, 70, 71, 210, 300];
        for (int p = 0; p + 1 < cuts.Length; p++)
        {
            int start = cuts[p], rows = cuts[p + 1] - cuts[p];
            var placed = model.Transform(fresh.AsSpan(start * 784, rows * 784).ToArray(), rows, start, 300);
            placed.CopyTo(parts, start * 2);
        }
        Assert.Equal(whole, parts);

        // The same row at another index of the set draws other negative samples, so it lands elsewhere (not far):
        // the place depends on the row's index, which is what makes the parts agree.
        var shifted = model.Transform(fresh.AsSpan(0, 784).ToArray(), 1, 5, 300);
        Assert.NotEqual(whole.AsSpan(0, 2).ToArray(), shifted);
        Assert.True(Math.Abs(shifted[0] - whole[0]) + Math.Abs(shifted[1] - whole[1]) < 0.25 * ProjectionTestData.Extent(whole, 2));
    }

    [Fact]
    public void APartOutsideItsWholeSetIsRefused()
    {
        var (train, _) = ProjectionTestData.Fashion(300);
        var model = new UmapReducer(new UmapOptions { Seed = 3, Deterministic = true, Epochs = 20 }).Fit(train, 300, 784);
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => model.Transform(train.AsSpan(0, 10 * 784).ToArray(), 10, 95, 100));
        Assert.Contains("100 rows", e.Message);
    }
}
