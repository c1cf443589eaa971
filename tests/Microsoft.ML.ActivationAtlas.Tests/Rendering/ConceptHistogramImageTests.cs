using Microsoft.ML.ActivationAtlas.Histogram;
using Microsoft.ML.ActivationAtlas.Rendering;
using SkiaSharp;

namespace Microsoft.ML.ActivationAtlas.Tests.Rendering;

public sealed class ConceptHistogramImageTests(CifarAtlasFixture fixture) : IClassFixture<CifarAtlasFixture>
{
    private const int Px = 24, Map = 16;

    private static readonly string[] s_vehicles = ["airplane", "automobile", "ship", "truck"];

    /// <summary>Histograms of the cats, the vehicles and the animals of the fixture's images.</summary>
    private (ConceptHistogram Cats, ConceptHistogram Vehicles, ConceptHistogram Animals) Histograms()
    {
        var ml = new MLContext(1);
        var rows = fixture.Rows;
        var model = ml.Transforms.BinToGrid("GridCell", "Layout", 10, 20, 40).Fit(ml.Data.LoadFromEnumerable(rows));
        ConceptHistogram Of(Func<Binning.CifarRow, bool> keep) => ml.Data.ConceptHistogram(model.Transform(ml.Data.LoadFromEnumerable(rows.Where(keep))));
        return (Of(r => r.Label == "cat"), Of(r => s_vehicles.Contains(r.Label)), Of(r => !s_vehicles.Contains(r.Label)));
    }

    [Fact]
    public void TheHistogramPictureFadesIconsByShareAndRanksTheTopConcepts()
    {
        var atlas = fixture.Atlas;
        var (cats, _, _) = Histograms();
        var top = ConceptHistogramRenderer.TopConcepts(atlas, cats, 20, 12);
        Assert.Equal(12, top.Count);
        var own = atlas.Level(20).Counts.ToArray();
        for (int i = 0; i < top.Count; i++)
        {
            var t = top[i];
            Assert.Equal(cats.Count(20, t.X, t.Y), t.Count);
            Assert.Equal(t.Count / (double)cats.Total, t.Share, 12);
            Assert.Equal(own[t.Y * 20 + t.X] / (double)atlas.RowCount, t.AtlasShare, 12);
            Assert.Equal(t.Share / t.AtlasShare, t.RatioToAtlas, 9);
            Assert.Equal(atlas.Level(20).Find(t.X, t.Y)!.TopClasses[0].Name, t.TopClass);
            if (i > 0)
                Assert.True(top[i - 1].Count >= t.Count);
        }
        // The cats are a tenth of the atlas's images: cat cells are over-represented against the atlas, on average.
        Assert.True(top.Average(t => t.RatioToAtlas) > 1.5);

        using var bmp = SKBitmap.Decode(ConceptHistogramRenderer.RenderPng(atlas, fixture.Icons, cats, new ConceptHistogramImageOptions { GridSize = 20, CellPixels = Px }));
        Assert.True(bmp.Width > Map + 20 * Px + 300, "a list beside the map");
        // The busiest cell is drawn as its icon (away from its rank badge); a cell without cats is a faint ghost.
        var best = top[0];
        using var icon = SKBitmap.Decode(fixture.Icons.Get(20, best.X, best.Y)!);
        var drawn = AtlasImageTests.Average(bmp, Map + best.X * Px + Px / 2, Map + best.Y * Px + Px / 2, Px / 2);
        var expected = AtlasImageTests.Average(icon, icon.Width / 2, icon.Height / 2, icon.Width / 2);
        Assert.True(Math.Abs(drawn.Red - expected.Red) + Math.Abs(drawn.Green - expected.Green) + Math.Abs(drawn.Blue - expected.Blue) < 30);
        var empty = atlas.Level(20).Cells.First(c => cats.Count(20, c.X, c.Y) == 0);
        var ghost = AtlasImageTests.Average(bmp, Map + empty.X * Px, Map + empty.Y * Px, Px);
        Assert.True(ghost.Red > 225 && ghost.Green > 225 && ghost.Blue > 225, $"ghost cell {ghost}");
    }

    [Fact]
    public void TheComparisonPictureFramesOnlySignificantCells()
    {
        var atlas = fixture.Atlas;
        var (_, vehicles, animals) = Histograms();
        var comparison = HistogramComparison.Compare(vehicles, animals, 10);
        // Vehicles and animals differ in colour: both directions have significant cells.
        Assert.NotEmpty(comparison.OverRepresented(10));
        Assert.NotEmpty(comparison.UnderRepresented(10));
        const int px = 48;
        using var bmp = SKBitmap.Decode(ConceptHistogramRenderer.RenderComparisonPng(atlas, fixture.Icons, comparison, "vehicles", "animals",
            new ConceptHistogramImageOptions { CellPixels = px }));
        foreach (var c in comparison.Cells)
        {
            if (atlas.Level(10).Find(c.X, c.Y) is null)
                continue;
            var edge = bmp.GetPixel(Map + c.X * px + 1, Map + c.Y * px + px / 2);
            if (c.Significant && c.Log2Ratio > 0)
                Assert.True(edge.Red > edge.Blue + 40, $"over-represented cell ({c.X}, {c.Y}) framed red: {edge}");
            else if (c.Significant)
                Assert.True(edge.Blue > edge.Red + 40, $"under-represented cell ({c.X}, {c.Y}) framed blue: {edge}");
            else
            {
                var faded = AtlasImageTests.Average(bmp, Map + c.X * px, Map + c.Y * px, px);
                Assert.True(faded.Red > 200 && faded.Green > 200 && faded.Blue > 200, $"cell ({c.X}, {c.Y}) faded: {faded}");
            }
        }
    }
}
