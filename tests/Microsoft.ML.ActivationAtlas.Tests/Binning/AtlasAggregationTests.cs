using Microsoft.ML.ActivationAtlas.Binning;
using Microsoft.ML.Data;

namespace Microsoft.ML.ActivationAtlas.Tests.Binning;

public sealed class AtlasAggregationTests
{
    private static (CifarRow[] Rows, int[][] Cells, GridAtlas Atlas, IDataView Transformed) Build(int perClass, AtlasAggregationOptions options)
    {
        var ml = new MLContext(1);
        var rows = CifarRows.Load(perClass);
        var data = ml.Data.LoadFromEnumerable(rows);
        var transformed = ml.Transforms.BinToGrid().Fit(data).Transform(data);
        var cells = transformed.GetColumn<int[]>("GridCell").ToArray();
        return (rows, cells, ml.Data.AggregateAtlas(transformed, options), transformed);
    }

    [Fact]
    public void CellMeansTopClassesAndExamplesMatchBruteForceOnCifarImages()
    {
        var names = CifarRows.ClassNames;
        var (rows, cells, atlas, _) = Build(100, new AtlasAggregationOptions { AttributionColumnName = "Attribution", TopClasses = 3, Examples = 4, ClassNames = names });
        Assert.Equal(names, atlas.ClassNames);
        for (int l = 0; l < atlas.Levels.Count; l++)
        {
            var level = atlas.Levels[l];
            int g = level.GridSize;
            var groups = Enumerable.Range(0, rows.Length).GroupBy(i => cells[i][l]).ToDictionary(x => x.Key, x => x.ToArray());
            Assert.Equal(groups.Count, level.Cells.Count);
            foreach (var cell in level.Cells)
            {
                var members = groups[cell.Y * g + cell.X];
                Assert.Equal(members.Length, cell.Count);
                for (int d = 0; d < CifarRows.Dim; d += 5)
                    Assert.Equal(members.Average(i => (double)rows[i].Activation[d]), cell.MeanActivation.Span[d], 1e-5);
                // One-hot attribution: the mean is the class share; the top class is the majority label.
                var share = names.Select(n => members.Count(i => rows[i].Label == n) / (double)members.Length).ToArray();
                for (int c = 0; c < 10; c++)
                    Assert.Equal(share[c], cell.MeanAttribution.Span[c], 1e-6);
                var expectedTop = Enumerable.Range(0, 10).OrderByDescending(c => share[c]).ThenBy(c => c).Take(3).ToArray();
                Assert.Equal(expectedTop, cell.TopClasses.Select(t => t.ClassIndex));
                Assert.Equal(names[expectedTop[0]], cell.TopClasses[0].Name);
                // Examples: the members nearest the mean activation, nearest first.
                var mean = Enumerable.Range(0, CifarRows.Dim).Select(d => members.Average(i => (double)rows[i].Activation[d])).ToArray();
                double Dist(int i) => Math.Sqrt(Enumerable.Range(0, CifarRows.Dim).Sum(d => Math.Pow(rows[i].Activation[d] - mean[d], 2)));
                var expected = members.OrderBy(Dist).ThenBy(i => i).Take(4).ToArray();
                Assert.Equal(Math.Min(4, members.Length), cell.ExampleRows.Count);
                for (int k = 0; k < expected.Length; k++)
                    Assert.Equal(Dist(expected[k]), Dist(cell.ExampleRows[k]), 1e-5);
                Assert.All(cell.ExampleRows, r => Assert.Contains(r, members));
            }
        }
    }

    [Fact]
    public void MinimumCountDropsSmallCellsAndTheDataViewHasOneRowPerKeptCell()
    {
        var (rows, _, atlas, _) = Build(50, new AtlasAggregationOptions { AttributionColumnName = "Attribution", MinimumCount = 3, ClassNames = CifarRows.ClassNames });
        var fine = atlas.Level(160);
        Assert.All(fine.Cells, c => Assert.True(c.Count >= 3));
        Assert.Equal(Enumerable.Range(0, 160 * 160).Count(i => fine.Counts[i] >= 3), fine.Cells.Count);
        Assert.True(fine.Counts.ToArray().Sum() == rows.Length);

        var ml = new MLContext(1);
        var view = atlas.ToDataView();
        Assert.Equal(atlas.Levels.Sum(l => l.Cells.Count), (int)view.GetRowCount()!);
        var sizes = view.GetColumn<int>("GridSize").ToArray();
        var xs = view.GetColumn<int>("CellX").ToArray();
        var ys = view.GetColumn<int>("CellY").ToArray();
        var counts = view.GetColumn<int>("Count").ToArray();
        var topNames = view.GetColumn<string[]>("TopClassNames").ToArray();
        var means = view.GetColumn<float[]>("MeanActivation").ToArray();
        var examples = view.GetColumn<int[]>("ExampleRows").ToArray();
        for (int r = 0; r < sizes.Length; r++)
        {
            var cell = atlas.Level(sizes[r]).Find(xs[r], ys[r]);
            Assert.NotNull(cell);
            Assert.Equal(cell!.Count, counts[r]);
            Assert.Equal(cell.TopClasses[0].Name, topNames[r][0]);
            Assert.Equal(cell.MeanActivation.ToArray(), means[r]);
            Assert.Equal(cell.ExampleRows, examples[r].Where(e => e >= 0));
        }
    }

    [Fact]
    public void WithoutAttributionCellsHaveNoClasses()
    {
        var (_, _, atlas, _) = Build(10, new AtlasAggregationOptions());
        Assert.Equal(0, atlas.ClassCount);
        Assert.All(atlas.Levels[0].Cells, c => Assert.Empty(c.TopClasses));
    }
}
