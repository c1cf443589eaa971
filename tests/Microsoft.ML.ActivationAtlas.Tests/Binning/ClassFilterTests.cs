using Microsoft.ML.Data;
using Microsoft.ML.ActivationAtlas.ClassAtlas;

namespace Microsoft.ML.ActivationAtlas.Tests.Binning;

public sealed class ClassFilterTests
{
    /// <summary>Soft "attributions" from real images: similarity of each image's colour layout to each class's mean layout.</summary>
    private static CifarRow[] SoftRows()
    {
        var rows = CifarRows.Load(50);
        var names = CifarRows.ClassNames;
        var centres = names.Select(n => rows.Where(r => r.Label == n).Select(r => r.Layout).ToArray())
            .Select(ls => new[] { ls.Average(l => l[0]), ls.Average(l => l[1]) }).ToArray();
        return rows.Select(r => new CifarRow
        {
            Path = r.Path,
            Label = r.Label,
            Layout = r.Layout,
            Activation = r.Activation,
            Attribution = centres.Select(c => -(float)Math.Sqrt(Math.Pow(r.Layout[0] - c[0], 2) + Math.Pow(r.Layout[1] - c[1], 2))).ToArray(),
        }).ToArray();
    }

    [Fact]
    public void RankMagnitudeAndBothMatchBruteForce()
    {
        var ml = new MLContext(1);
        var rows = SoftRows();
        var data = ml.Data.LoadFromEnumerable(rows);
        const int cls = 3, n = 40;
        var rank = Enumerable.Range(0, rows.Length).Where(i => Array.IndexOf(rows[i].Attribution, rows[i].Attribution.Max()) == cls).ToArray();
        var magnitude = Enumerable.Range(0, rows.Length).OrderByDescending(i => rows[i].Attribution[cls]).ThenBy(i => i).Take(n).OrderBy(i => i).ToArray();

        int[] Selected(ClassFilterKind kind) =>
            ml.Data.FilterByClass(data, "Attribution", cls, kind, n).GetColumn<int>("SourceRow").ToArray();

        Assert.Equal(rank, Selected(ClassFilterKind.Rank));
        Assert.Equal(magnitude, Selected(ClassFilterKind.Magnitude));
        var both = Selected(ClassFilterKind.Both);
        Assert.Equal(rank.Union(magnitude).OrderBy(i => i), both);
        Assert.Equal(both.Length, both.Distinct().Count());
        Assert.True(both.Length < rank.Length + magnitude.Length, "the two filters overlap on real data, so deduplication matters");

        // The filtered rows carry their own columns, unchanged.
        var paths = ml.Data.FilterByClass(data, "Attribution", cls, ClassFilterKind.Both, n).GetColumn<string>("Path").ToArray();
        Assert.Equal(both.Select(i => rows[i].Path), paths);
    }

    [Fact]
    public void ClassesAreFoundByNameAndUnknownNamesAreRejected()
    {
        var ml = new MLContext(1);
        var rows = SoftRows();
        var data = ml.Data.LoadFromEnumerable(rows);
        var names = CifarRows.ClassNames;
        var byName = ml.Data.FilterByClass(data, "Attribution", "CAT", names, ClassFilterKind.Rank).GetColumn<int>("SourceRow").ToArray();
        var byIndex = ml.Data.FilterByClass(data, "Attribution", Array.IndexOf(names, "cat"), ClassFilterKind.Rank).GetColumn<int>("SourceRow").ToArray();
        Assert.Equal(byIndex, byName);
        var e = Assert.Throws<ArgumentException>(() => ml.Data.FilterByClass(data, "Attribution", "fireboat", names));
        Assert.Contains("fireboat", e.Message);
        Assert.Contains("airplane", e.Message);
    }

    [Fact]
    public void ClassDifferenceIsScaledByItsNinetyNinthPercentileAndClipped()
    {
        var ml = new MLContext(1);
        var rows = SoftRows();
        var data = ml.Data.LoadFromEnumerable(rows);
        var model = ml.Transforms.ClassDifference("CompareX", "Attribution", 3, 5).Fit(data);
        var diffs = rows.Select(r => r.Attribution[3] - r.Attribution[5]).ToArray();
        var abs = diffs.Select(Math.Abs).OrderBy(d => d).ToArray();
        double pos = 0.99 * (abs.Length - 1);
        int k = (int)pos;
        double p99 = abs[k] + (pos - k) * (abs[k + 1] - abs[k]);
        Assert.Equal(p99, model.Scale, 1e-6);
        var x = model.Transform(data).GetColumn<float>("CompareX").ToArray();
        for (int i = 0; i < rows.Length; i++)
            Assert.Equal(Math.Clamp(diffs[i] / p99, -1, 1), x[i], 1e-5);
        Assert.Contains(x, v => MathF.Abs(v) == 1f);
        Assert.True(x.Count(v => MathF.Abs(v) == 1f) <= rows.Length / 100 + 1);
    }
}
