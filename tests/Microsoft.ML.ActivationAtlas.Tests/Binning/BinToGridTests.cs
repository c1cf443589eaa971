using Microsoft.ML.ActivationAtlas.Binning;
using Microsoft.ML.Data;

namespace Microsoft.ML.ActivationAtlas.Tests.Binning;

public sealed class BinToGridTests
{
    private static readonly int[] Sizes = [20, 40, 80, 160];

    private sealed class Point
    {
        [VectorType(2)]
        public float[] Layout { get; set; } = [];
    }

    private static Point[] RandomPoints(int n, int seed)
    {
        var rng = new Random(seed);
        var points = new Point[n];
        for (int i = 0; i < n; i++)
        {
            // A skewed cloud with a few far outliers, so clipping matters.
            double gx = Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble());
            float x = (float)(3 * gx + 10), y = (float)(rng.NextDouble() * rng.NextDouble() * 5 - 2);
            if (i % 499 == 0)
                x += 200;
            points[i] = new Point { Layout = [x, y] };
        }
        return points;
    }

    private static float NumpyPercentile(float[] values, double p)
    {
        var s = values.OrderBy(v => v).ToArray();
        double pos = p / 100 * (s.Length - 1);
        int i = (int)Math.Floor(pos);
        return i >= s.Length - 1 ? s[^1] : (float)(s[i] + (pos - i) * (s[i + 1] - (double)s[i]));
    }

    [Fact]
    public void NormalisationUsesFirstAndNinetyNinthPercentileWithTenPercentMargin()
    {
        var ml = new MLContext(1);
        var points = RandomPoints(5000, 7);
        var data = ml.Data.LoadFromEnumerable(points);
        var model = ml.Transforms.BinToGrid().Fit(data);

        var xs = points.Select(p => p.Layout[0]).ToArray();
        var ys = points.Select(p => p.Layout[1]).ToArray();
        float p1x = NumpyPercentile(xs, 1), p99x = NumpyPercentile(xs, 99);
        float p1y = NumpyPercentile(ys, 1), p99y = NumpyPercentile(ys, 99);
        Assert.Equal(p1x - 0.1f * (p99x - p1x), model.Normalization.MinX, 4);
        Assert.Equal(p99x + 0.1f * (p99x - p1x), model.Normalization.MaxX, 4);
        Assert.Equal(p1y - 0.1f * (p99y - p1y), model.Normalization.MinY, 4);
        Assert.Equal(p99y + 0.1f * (p99y - p1y), model.Normalization.MaxY, 4);

        // Positions are clipped to [0, 1]; the outliers sit on the edge, most points strictly inside.
        var pos = model.Transform(data).GetColumn<float[]>("GridPosition").ToArray();
        Assert.All(pos, p => Assert.InRange(p[0], 0f, 1f));
        Assert.Contains(pos, p => p[0] == 1f);
        Assert.True(pos.Count(p => p[0] > 0 && p[0] < 1) > 0.95 * pos.Length);
        for (int i = 0; i < points.Length; i += 37)
        {
            float expected = Math.Clamp((points[i].Layout[0] - model.Normalization.MinX) / (model.Normalization.MaxX - model.Normalization.MinX), 0f, 1f);
            Assert.Equal(expected, pos[i][0], 1e-5);
        }
    }

    [Fact]
    public void EveryPointFallsInExactlyOneHalfOpenCellPerLevelAndCoarseCellsContainTheirChildren()
    {
        var ml = new MLContext(1);
        var points = RandomPoints(20000, 3);
        var data = ml.Data.LoadFromEnumerable(points);
        var transformed = ml.Transforms.BinToGrid().Fit(data).Transform(data);
        var cells = transformed.GetColumn<int[]>("GridCell").ToArray();
        var pos = transformed.GetColumn<float[]>("GridPosition").ToArray();
        for (int i = 0; i < points.Length; i++)
        {
            Assert.Equal(Sizes.Length, cells[i].Length);
            for (int l = 0; l < Sizes.Length; l++)
            {
                int g = Sizes[l];
                int x = cells[i][l] % g, y = cells[i][l] / g;
                // Count the cells whose half-open box holds the point (the last cell is closed at 1).
                int holders = 0;
                for (int cx = Math.Max(0, x - 1); cx <= Math.Min(g - 1, x + 1); cx++)
                    for (int cy = Math.Max(0, y - 1); cy <= Math.Min(g - 1, y + 1); cy++)
                        if (In(pos[i][0], cx, g) && In(pos[i][1], cy, g))
                            holders++;
                Assert.Equal(1, holders);
                Assert.True(In(pos[i][0], x, g) && In(pos[i][1], y, g), $"row {i} level {g}: ({pos[i][0]}, {pos[i][1]}) not in cell ({x}, {y})");
                if (l > 0)
                {
                    int fine = cells[i][Sizes.Length - 1], f = Sizes[^1], ratio = f / g;
                    Assert.Equal((fine / f / ratio) * g + (fine % f) / ratio, cells[i][l]);
                }
            }
        }

        static bool In(float u, int cell, int g) => u >= cell / (double)g && (u < (cell + 1) / (double)g || (cell == g - 1 && u <= 1f));
    }

    [Fact]
    public void HalfOpenBoundariesBelongToTheUpperCell()
    {
        var grid = new GridLevels([20]);
        Assert.Equal((5, 5), grid.FinestCell(0.25f, 0.25f));
        Assert.Equal((4, 4), grid.FinestCell(MathF.BitDecrement(0.25f), MathF.BitDecrement(0.25f)));
        Assert.Equal((0, 0), grid.FinestCell(0f, 0f));
        Assert.Equal((19, 19), grid.FinestCell(1f, 1f));
    }

    [Fact]
    public void NestedCountsEqualTheSumOfTheirChildren()
    {
        var ml = new MLContext(1);
        var rows = CifarRows.Load(100);
        var data = ml.Data.LoadFromEnumerable(rows);
        var transformed = ml.Transforms.BinToGrid().Fit(data).Transform(data);
        var atlas = ml.Data.AggregateAtlas(transformed);
        Assert.Equal(Sizes, atlas.Levels.Select(l => l.GridSize));
        for (int l = 0; l < Sizes.Length; l++)
        {
            var level = atlas.Levels[l];
            int g = level.GridSize;
            Assert.Equal(rows.Length, level.Cells.Sum(c => c.Count));
            Assert.Equal(rows.Length, level.Counts.ToArray().Sum());
            if (l + 1 < Sizes.Length)
            {
                var child = atlas.Levels[l + 1];
                for (int y = 0; y < g; y++)
                    for (int x = 0; x < g; x++)
                    {
                        int sum = child.Counts[(2 * y) * 2 * g + 2 * x] + child.Counts[(2 * y) * 2 * g + 2 * x + 1]
                            + child.Counts[(2 * y + 1) * 2 * g + 2 * x] + child.Counts[(2 * y + 1) * 2 * g + 2 * x + 1];
                        Assert.Equal(sum, level.Counts[y * g + x]);
                    }
            }
        }
        // Real images spread over many cells, not one.
        Assert.True(atlas.Level(20).Cells.Count > 30);
    }

    [Fact]
    public void NewDataLandsInTheCellsOfTheFittedData()
    {
        var ml = new MLContext(1);
        var rows = CifarRows.Load(100);
        var model = ml.Transforms.BinToGrid().Fit(ml.Data.LoadFromEnumerable(rows));
        var all = model.Transform(ml.Data.LoadFromEnumerable(rows)).GetColumn<int[]>("GridCell").ToArray();
        var subset = rows.Where((_, i) => i % 3 == 0).ToArray();
        var sub = model.Transform(ml.Data.LoadFromEnumerable(subset)).GetColumn<int[]>("GridCell").ToArray();
        for (int i = 0; i < subset.Length; i++)
            Assert.Equal(all[3 * i], sub[i]);
        // A subset fitted on its own would normalise differently: the state matters.
        var refit = ml.Transforms.BinToGrid().Fit(ml.Data.LoadFromEnumerable(rows.Take(100))).Transform(ml.Data.LoadFromEnumerable(subset));
        Assert.NotEqual(sub.Select(c => c[3]), refit.GetColumn<int[]>("GridCell").Select(c => c[3]));
    }

    [Fact]
    public void PredictionEngineGivesTheSameCellsAsTransform()
    {
        var ml = new MLContext(1);
        var rows = CifarRows.Load(20);
        var data = ml.Data.LoadFromEnumerable(rows);
        var model = ml.Transforms.BinToGrid().Fit(data);
        var cells = model.Transform(data).GetColumn<int[]>("GridCell").ToArray();
        var engine = ml.Model.CreatePredictionEngine<CifarRow, CellPrediction>(model);
        for (int i = 0; i < rows.Length; i += 13)
            Assert.Equal(cells[i], engine.Predict(rows[i]).GridCell);
    }

    public sealed class CellPrediction
    {
        public int[] GridCell { get; set; } = [];
    }

    [Fact]
    public void BadInputGetsMessagesNamingTheProblem()
    {
        var ml = new MLContext(1);
        var e1 = Assert.Throws<ArgumentOutOfRangeException>(() => ml.Transforms.BinToGrid("GridCell", "Layout", 20, 30, 160));
        Assert.Contains("30", e1.Message);
        var data = ml.Data.LoadFromEnumerable(CifarRows.Load(2));
        var e2 = Assert.Throws<ArgumentOutOfRangeException>(() => ml.Transforms.BinToGrid("GridCell", "Umap").Fit(data));
        Assert.Contains("'Umap'", e2.Message);
        var e3 = Assert.Throws<ArgumentOutOfRangeException>(() => ml.Transforms.BinToGrid("GridCell", "Activation").Fit(data));
        Assert.Contains("2 values", e3.Message);
    }
}
