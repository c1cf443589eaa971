using Microsoft.ML.ActivationAtlas.Histogram;

using Microsoft.ML.Data;
using Xunit.Abstractions;

namespace Microsoft.ML.ActivationAtlas.Tests.Histogram;

public sealed class HistogramComparisonTests(CifarHistogramFixture fixture, ITestOutputHelper output) : IClassFixture<CifarHistogramFixture>
{
    [Fact]
    public void FisherTestAndBenjaminiHochbergMatchReferenceValues()
    {
        // Fisher's lady tasting tea: [[3, 1], [1, 3]], two-sided p = 34/70; scipy.stats.fisher_exact([[10, 90], [2, 98]]) = 0.03304...
        Assert.Equal(34.0 / 70, CountStatistics.FisherExactTwoSided(3, 4, 1, 4), 12);
        Assert.Equal(0.033040, CountStatistics.FisherExactTwoSided(10, 100, 2, 100), 5);
        Assert.Equal(1.0, CountStatistics.FisherExactTwoSided(5, 100, 5, 100), 9);
        Assert.Equal(Math.Log(3628800.0), CountStatistics.LogFactorial(10), 10);
        // R: p.adjust(c(0.01, 0.04, 0.03, 0.5), "BH") = 0.04, 0.0533, 0.0533, 0.5
        var q = CountStatistics.BenjaminiHochberg([0.01, 0.04, 0.03, 0.5]);
        Assert.Equal([0.04, 0.04 * 4 / 3, 0.04 * 4 / 3, 0.5], q.Select(v => Math.Round(v, 10)).ToArray(), new ToleranceComparer(1e-9));
        Assert.Equal(1.959964, CountStatistics.NormalQuantile(0.975), 5);
        Assert.Equal(-2.326348, CountStatistics.NormalQuantile(0.01), 5);
    }

    [Fact]
    public void RandomHalvesOfOneFolderGiveNoSignificantCells()
    {
        // Calibration on the aggregated counts: split the 1,000 images at random, compare the halves on each grid.
        int n = fixture.FinestCells.Length, seeds = 200, anySignificant = 0, anyUncorrected = 0;
        foreach (int size in new[] { 8, 16 })
            for (int seed = 0; seed < seeds; seed++)
            {
                var order = Enumerable.Range(0, n).ToArray();
                new Random(seed).Shuffle(order);
                var c = HistogramComparison.Compare(fixture.Counts(order[..(n / 2)], size), fixture.Counts(order[(n / 2)..], size), size);
                if (c.Significant.Any())
                    anySignificant++;
                if (c.Cells.Any(x => x.PValue < 0.05))
                    anyUncorrected++;
                // The interval contains the estimate, and agrees in sign with a significant difference.
                Assert.All(c.Cells, x => Assert.True(x.Log2RatioLow <= x.Log2Ratio && x.Log2Ratio <= x.Log2RatioHigh));
            }
        output.WriteLine($"random halves: a significant cell in {anySignificant} of {2 * seeds} splits; uncorrected p < 0.05 in {anyUncorrected}");
        Assert.True(anySignificant <= 0.05 * 2 * seeds, $"{anySignificant} of {2 * seeds} splits had a significant cell");
        // Without the correction for many cells, most splits would "find" something: the correction matters.
        Assert.True(anyUncorrected > 0.5 * 2 * seeds, $"uncorrected: {anyUncorrected} of {2 * seeds}");
    }

    [Fact]
    public void AFolderWithOneClassRemovedShowsThatClassUnderRepresented()
    {
        // The folder without its ships against the whole folder.
        var ml = fixture.Ml;
        var images = fixture.Images;
        var first = Enumerable.Range(0, images.Length).Where(i => images[i].Label != "ship");
        var second = Enumerable.Range(0, images.Length);
        var a = ml.Data.ConceptHistogram(fixture.Cells(first));
        var b = ml.Data.ConceptHistogram(fixture.Cells(second));
        Assert.Equal(900, a.Total);
        Assert.Equal(1000, b.Total);
        var comparison = HistogramComparison.Compare(a, b, 8);
        var under = comparison.UnderRepresented(100);

        // Ships per cell, where the fitted pipeline places them.
        var ships = new int[64];
        var placed = fixture.Cells(second).GetColumn<int[]>("GridCell").ToArray();
        int row = 0;
        foreach (int i in second)
        {
            if (images[i].Label == "ship")
                ships[placed[row][1]]++;
            row++;
        }
        Assert.Equal(100, ships.Sum());
        Assert.True(under.Count > 0, "no significant cell: " + string.Join("; ", comparison.Cells.Select(c => $"({c.X},{c.Y}) {c.CountA}/{c.CountB} ships {ships[c.Y * 8 + c.X]} p {c.PValue:G2} q {c.QValue:G2}")));
        foreach (var cell in under)
        {
            int i = cell.Y * 8 + cell.X;
            Assert.True(ships[i] * 2 > cell.CountB, $"cell ({cell.X}, {cell.Y}): {ships[i]} ships of {cell.CountB}");
            Assert.True(cell.Log2RatioHigh < 0, "the interval excludes no difference");
        }
        // The cell holding the most ships is among them.
        int most = Array.IndexOf(ships, ships.Max());
        Assert.Contains(under, c => c.Y * 8 + c.X == most);
        // Removing a tenth of the rows raises every other share by about 1.1x: not significant anywhere.
        Assert.Empty(comparison.OverRepresented(100));
    }

    [Fact]
    public void ShardsMergeToTheSingleRunAndHistogramsRoundTripThroughJson()
    {
        var ml = fixture.Ml;
        var all = ml.Data.ConceptHistogram(fixture.Cells(Enumerable.Range(0, 300)));
        var parts = Enumerable.Range(0, 3).Select(k => ml.Data.ConceptHistogram(
            fixture.Cells(Enumerable.Range(0, 300).Where(i => i % 3 == k)))).ToArray();
        var merged = ConceptHistogram.Merge(parts);
        Assert.Equal(all.Total, merged.Total);
        foreach (int size in all.Levels.Sizes)
            Assert.Equal(all.Counts(size).ToArray(), merged.Counts(size).ToArray());
        Assert.Equal(fixture.Counts(Enumerable.Range(0, 300), 8), all.Counts(8).ToArray());

        string path = Path.Combine(Path.GetTempPath(), $"histogram-{Guid.NewGuid():N}.json");
        try
        {
            merged.Save(path);
            var loaded = ConceptHistogram.Load(path);
            Assert.Equal(merged.Total, loaded.Total);
            Assert.Equal(merged.Counts(4).ToArray(), loaded.Counts(4).ToArray());
            File.WriteAllText(path, "{\"grids\":[4,8],\"total\":3,\"finestCounts\":[1,2]}");
            var e = Assert.Throws<InvalidDataException>(() => ConceptHistogram.Load(path));
            Assert.Contains("64 counts", e.Message);
            Assert.Contains(path, e.Message);
        }
        finally
        {
            File.Delete(path);
        }
        Assert.Throws<ArgumentException>(() => ConceptHistogram.Merge([all, ConceptHistogram.FromCounts([2, 4], new int[16])]));
    }

    private sealed class ToleranceComparer(double tolerance) : IEqualityComparer<double>
    {
        public bool Equals(double x, double y) => Math.Abs(x - y) <= tolerance;

        public int GetHashCode(double obj) => 0;
    }
}
