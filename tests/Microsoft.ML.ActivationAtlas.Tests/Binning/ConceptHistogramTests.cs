using Microsoft.ML.Data;
using Microsoft.ML.ActivationAtlas.Histogram;

namespace Microsoft.ML.ActivationAtlas.Tests.Binning;

public sealed class ConceptHistogramTests
{
    [Fact]
    public void CountsOfANewDatasetAndTheDifferenceOfTwoDatasets()
    {
        var ml = new MLContext(1);
        var rows = CifarRows.Load(50);
        var model = ml.Transforms.BinToGrid().Fit(ml.Data.LoadFromEnumerable(rows));

        // Two "unknown" datasets: vehicles and animals.
        string[] vehicles = ["airplane", "automobile", "ship", "truck"];
        var a = rows.Where(r => vehicles.Contains(r.Label)).ToArray();
        var b = rows.Where(r => !vehicles.Contains(r.Label)).ToArray();
        var ta = model.Transform(ml.Data.LoadFromEnumerable(a));
        var ha = ml.Data.ConceptHistogram(ta);
        var hb = ml.Data.ConceptHistogram(model.Transform(ml.Data.LoadFromEnumerable(b)));
        Assert.Equal(a.Length, ha.Total);

        var cells = ta.GetColumn<int[]>("GridCell").ToArray();
        int[] sizes = [20, 40, 80, 160];
        for (int l = 0; l < sizes.Length; l++)
        {
            int g = sizes[l];
            var expected = new int[g * g];
            foreach (var c in cells)
                expected[c[l]]++;
            Assert.Equal(expected, ha.Counts(g).ToArray());
        }

        var diff = ConceptHistogram.Difference(ha, hb, 20);
        var fa = ha.Fractions(20);
        var fb = hb.Fractions(20);
        for (int i = 0; i < diff.Length; i++)
            Assert.Equal(fa[i] - fb[i], diff[i], 6);
        Assert.Equal(0f, diff.Sum(), 4);
        // Vehicles and animals differ somewhere in colour space.
        Assert.True(diff.Max() > 0.01f && diff.Min() < -0.01f);
        Assert.All(ConceptHistogram.Difference(ha, ha, 40), d => Assert.Equal(0f, d));
    }
}
