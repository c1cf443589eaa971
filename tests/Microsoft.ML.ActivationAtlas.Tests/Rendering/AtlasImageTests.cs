using Microsoft.ML.ActivationAtlas.Binning;
using Microsoft.ML.ActivationAtlas.Histogram;
using Microsoft.ML.ActivationAtlas.Rendering;
using Microsoft.ML.ActivationAtlas.Tests.Binning;
using SkiaSharp;

namespace Microsoft.ML.ActivationAtlas.Tests.Rendering;

public sealed class AtlasImageTests(CifarAtlasFixture fixture) : IClassFixture<CifarAtlasFixture>
{
    private const int Px = 32;

    /// <summary>The mean colour of a square of a bitmap.</summary>
    internal static SKColor Average(SKBitmap bmp, int left, int top, int size)
    {
        long r = 0, g = 0, b = 0;
        for (int y = top; y < top + size; y++)
            for (int x = left; x < left + size; x++)
            {
                var c = bmp.GetPixel(x, y);
                r += c.Red; g += c.Green; b += c.Blue;
            }
        int n = size * size;
        return new SKColor((byte)(r / n), (byte)(g / n), (byte)(b / n));
    }

    private static int Distance(SKColor a, SKColor b) => Math.Abs(a.Red - b.Red) + Math.Abs(a.Green - b.Green) + Math.Abs(a.Blue - b.Blue);

    [Fact]
    public void IconsSitAtTheirCellsAndEmptyCellsStayBackground()
    {
        var atlas = fixture.Atlas;
        using var bmp = SKBitmap.Decode(AtlasImageRenderer.RenderPng(atlas, fixture.Icons, new AtlasImageOptions { GridSize = 20, CellPixels = Px }));
        Assert.Equal(20 * Px, bmp.Width);
        var level = atlas.Level(20);
        foreach (var cell in level.Cells.Take(40))
        {
            using var icon = SKBitmap.Decode(fixture.Icons.Get(20, cell.X, cell.Y)!);
            // The drawn cell looks like its icon: the nearest example image of the cell.
            Assert.True(Distance(Average(icon, 0, 0, Px), Average(bmp, cell.X * Px, cell.Y * Px, Px)) < 12, $"cell ({cell.X}, {cell.Y})");
            using var example = SKBitmap.Decode(fixture.Rows[cell.ExampleRows[0]].Path);
            Assert.True(Distance(Average(example, 0, 0, 32), Average(icon, 0, 0, Px)) < 12);
        }
        for (int y = 0; y < 20; y++)
            for (int x = 0; x < 20; x++)
                if (level.Counts[y * 20 + x] == 0)
                    Assert.Equal(SKColors.White, Average(bmp, x * Px, y * Px, Px));
    }

    [Fact]
    public void PerClassViewFadesIconsByAttributionToTheClass()
    {
        var atlas = fixture.Atlas;
        int ship = atlas.ClassIndex("ship");
        using var bmp = SKBitmap.Decode(AtlasImageRenderer.RenderPng(atlas, fixture.Icons, new AtlasImageOptions { GridSize = 20, CellPixels = Px, ClassIndex = ship }));
        var cells = atlas.Level(20).Cells;
        var strongest = cells.OrderByDescending(c => c.MeanAttribution.Span[ship]).First();
        using var icon = SKBitmap.Decode(fixture.Icons.Get(20, strongest.X, strongest.Y)!);
        Assert.True(Distance(Average(icon, 0, 0, Px), Average(bmp, strongest.X * Px, strongest.Y * Px, Px)) < 12);
        var none = cells.Where(c => c.MeanAttribution.Span[ship] == 0).ToArray();
        Assert.NotEmpty(none);
        foreach (var c in none)
            Assert.Equal(SKColors.White, Average(bmp, c.X * Px, c.Y * Px, Px));
        // Every drawn cell is its icon blended over the background with weight v = attribution / largest
        // attribution: each pixel equals v * icon + (1 - v) * background within 2 per channel.
        float classMax = cells.Max(c => c.MeanAttribution.Span[ship]);
        int partial = 0;
        foreach (var cell in cells)
        {
            float v = Math.Clamp(cell.MeanAttribution.Span[ship] / classMax, 0f, 1f);
            if (v is > 0.05f and < 0.95f)
                partial++;
            using var ic = SKBitmap.Decode(fixture.Icons.Get(20, cell.X, cell.Y)!);
            for (int y = 0; y < Px; y++)
                for (int x = 0; x < Px; x++)
                {
                    var drawn = bmp.GetPixel(cell.X * Px + x, cell.Y * Px + y);
                    var source = ic.GetPixel(x, y);
                    int r = Blend(source.Red), g = Blend(source.Green), b = Blend(source.Blue);
                    Assert.True(Math.Abs(drawn.Red - r) <= 2 && Math.Abs(drawn.Green - g) <= 2 && Math.Abs(drawn.Blue - b) <= 2,
                        $"cell ({cell.X}, {cell.Y}), v = {v:0.000}, pixel ({x}, {y}): drawn {drawn}, expected ({r}, {g}, {b})");
                }

            int Blend(byte icon) => v <= 0.01f ? 255 : (int)Math.Round(v * icon + (1 - v) * 255);
        }
        Assert.True(partial >= 10, $"only {partial} cells are partly ship; the test needs partly faded cells");
    }

    [Fact]
    public void LabelsNameTheTopClassOfStrongCellsAndNeverOverlap()
    {
        var atlas = fixture.Atlas;
        const int px = 64;
        var level = atlas.Level(20);
        var labels = AtlasImageRenderer.Labels(level, px);
        Assert.True(labels.Count >= 5, $"only {labels.Count} labels");
        float max = level.Cells.Max(c => c.TopClasses[0].Value);
        for (int i = 0; i < labels.Count; i++)
        {
            var l = labels[i];
            var cell = level.Find(l.X, l.Y)!;
            Assert.Equal(cell.TopClasses[0].ClassIndex, l.ClassIndex);
            Assert.Equal(cell.TopClasses[0].Name, l.Text);
            Assert.True(l.Value > 0.5f * max);
            Assert.True(l.Width <= 2 * px && l.Left >= 0 && l.Left + l.Width <= 20 * px);
            for (int j = 0; j < i; j++)
                Assert.False(l.Overlaps(labels[j]), $"labels '{l.Text}' at ({l.X}, {l.Y}) and '{labels[j].Text}' at ({labels[j].X}, {labels[j].Y}) overlap");
        }
        // Strong cells left unlabelled are blocked by a label, a nearby one of the same class, or their name's width.
        var labelled = labels.Select(l => (l.X, l.Y)).ToHashSet();
        Assert.Contains(level.Cells.Where(c => c.TopClasses[0].Value > 0.5f * max), c => !labelled.Contains((c.X, c.Y)));

        // The labels are drawn in their boxes and nowhere else; off, and in the per-class view, there are none.
        using var with = SKBitmap.Decode(AtlasImageRenderer.RenderPng(atlas, fixture.Icons, new AtlasImageOptions { GridSize = 20, CellPixels = px }));
        using var without = SKBitmap.Decode(AtlasImageRenderer.RenderPng(atlas, fixture.Icons, new AtlasImageOptions { GridSize = 20, CellPixels = px, Labels = false }));
        int inside = 0;
        for (int y = 0; y < with.Height; y++)
            for (int x = 0; x < with.Width; x++)
            {
                bool inBox = labels.Any(l => x >= l.Left - 1 && x <= l.Left + l.Width + 1 && y >= l.Top - 1 && y <= l.Top + l.Height + 1);
                if (!inBox)
                    Assert.Equal(without.GetPixel(x, y), with.GetPixel(x, y));
                else if (with.GetPixel(x, y) != without.GetPixel(x, y))
                    inside++;
            }
        Assert.True(inside > labels.Count * 50, $"{inside} changed pixels in {labels.Count} label boxes");
        // Cells of 32 pixels are too small for a 9-pixel font (a quarter of a cell).
        Assert.Empty(AtlasImageRenderer.Labels(level, 32));
    }

    [Fact]
    public void ComparisonAxesAreCaptionedInAMargin()
    {
        var atlas = fixture.Atlas;
        var plain = AtlasImageRenderer.RenderPng(atlas, fixture.Icons, new AtlasImageOptions { GridSize = 10, CellPixels = Px });
        var axes = AtlasImageRenderer.RenderPng(atlas, fixture.Icons, new AtlasImageOptions { GridSize = 10, CellPixels = Px, Axes = AtlasAxes.ClassComparison("cat", "dog") });
        using var a = SKBitmap.Decode(plain);
        using var b = SKBitmap.Decode(axes);
        Assert.True(b.Width > a.Width && b.Height > a.Height);
        int left = b.Width - a.Width;
        // The atlas itself is unchanged, shifted right by the vertical caption's margin; the margins carry ink.
        for (int y = 0; y < a.Height; y += 7)
            for (int x = 0; x < a.Width; x += 7)
                Assert.Equal(a.GetPixel(x, y), b.GetPixel(x + left, y));
        int Ink(int x0, int y0, int x1, int y1)
        {
            int n = 0;
            for (int y = y0; y < y1; y++)
                for (int x = x0; x < x1; x++)
                    if (b.GetPixel(x, y).Red < 128)
                        n++;
            return n;
        }
        Assert.True(Ink(left, a.Height, left + a.Width / 3, b.Height) > 100, "left end named");
        Assert.True(Ink(left + 2 * a.Width / 3, a.Height, b.Width, b.Height) > 100, "right end named");
        Assert.True(Ink(0, 0, left, a.Height) > 100, "vertical axis named");
    }

    [Fact]
    public void DensitySizingShrinksIconsOfSparseCells()
    {
        var atlas = fixture.Atlas;
        using var bmp = SKBitmap.Decode(AtlasImageRenderer.RenderPng(atlas, fixture.Icons, new AtlasImageOptions { GridSize = 20, CellPixels = Px, SizeByDensity = true }));
        var sparse = atlas.Level(20).Cells.Where(c => c.Count == 1).First();
        // The corner of a single-image cell is background; its centre is icon.
        Assert.Equal(SKColors.White, bmp.GetPixel(sparse.X * Px + 1, sparse.Y * Px + 1));
        var dense = atlas.Level(20).Cells.OrderByDescending(c => c.Count).First();
        Assert.NotEqual(SKColors.White, Average(bmp, dense.X * Px, dense.Y * Px, 3));
    }

    [Fact]
    public void HeatMapsShowCountsAndSignedDifferences()
    {
        var ml = new MLContext(1);
        var rows = fixture.Rows;
        var model = ml.Transforms.BinToGrid("GridCell", "Layout", 10, 20, 40).Fit(ml.Data.LoadFromEnumerable(rows));
        var cats = ml.Data.ConceptHistogram(model.Transform(ml.Data.LoadFromEnumerable(rows.Where(r => r.Label == "cat"))));
        var ships = ml.Data.ConceptHistogram(model.Transform(ml.Data.LoadFromEnumerable(rows.Where(r => r.Label == "ship"))));
        string dir = Path.Combine(Path.GetTempPath(), "atlas-heat-" + Guid.NewGuid().ToString("N"));
        try
        {
            string counts = Path.Combine(dir, "cats.png"), diff = Path.Combine(dir, "diff.png");
            HeatmapRenderer.RenderCounts(cats, 20, counts, 8);
            HeatmapRenderer.RenderDifference(ConceptHistogram.Difference(cats, ships, 20), 20, diff, 8);
            Assert.Equal(["cats.png", "diff.png"], Directory.GetFiles(dir).Select(f => Path.GetFileName(f)!).Order().ToArray());

            using var c = SKBitmap.Decode(counts);
            var cc = cats.Counts(20).ToArray();
            int max = Array.IndexOf(cc, cc.Max());
            var darkest = c.GetPixel(max % 20 * 8 + 4, max / 20 * 8 + 4);
            Assert.True(darkest.Green < 30, $"the busiest cell is dark red, got {darkest}");
            int empty = Array.IndexOf(cc, 0);
            Assert.Equal(SKColors.White, c.GetPixel(empty % 20 * 8 + 4, empty / 20 * 8 + 4));

            using var d = SKBitmap.Decode(diff);
            var dv = ConceptHistogram.Difference(cats, ships, 20);
            int catMost = Array.IndexOf(dv, dv.Max()), shipMost = Array.IndexOf(dv, dv.Min());
            var red = d.GetPixel(catMost % 20 * 8 + 4, catMost / 20 * 8 + 4);
            var blue = d.GetPixel(shipMost % 20 * 8 + 4, shipMost / 20 * 8 + 4);
            Assert.True(red.Red == 255 && red.Blue < 60 && red.Green == red.Blue, $"most cats: strong red, got {red}");
            Assert.True(blue.Blue == 255 && blue.Red < 200 && blue.Red == blue.Green, $"most ships: blue, got {blue}");
        }
        finally
        {
            if (Directory.Exists(dir))
                Directory.Delete(dir, true);
        }
    }

    [Fact]
    public void ViewerRefusesAnExistingFolderAndLeavesItUntouched()
    {
        string dir = Path.Combine(Path.GetTempPath(), "atlas-existing-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, "keep.txt"), "mine");
        try
        {
            var e = Assert.Throws<IOException>(() => AtlasViewerWriter.Write(fixture.Atlas, fixture.Icons, dir));
            Assert.Contains(dir, e.Message);
            Assert.Equal(["keep.txt"], Directory.GetFileSystemEntries(dir).Select(f => Path.GetFileName(f)!).ToArray());
            Assert.Empty(Directory.GetDirectories(Path.GetDirectoryName(dir)!, "." + Path.GetFileName(dir) + "*"));
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }
}
