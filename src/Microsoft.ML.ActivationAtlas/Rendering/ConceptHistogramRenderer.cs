using System.Globalization;
using Microsoft.ML.ActivationAtlas.Binning;
using Microsoft.ML.ActivationAtlas.Histogram;
using SkiaSharp;

namespace Microsoft.ML.ActivationAtlas.Rendering;

/// <summary>Settings of the concept histogram pictures.</summary>
public sealed class ConceptHistogramImageOptions
{
    /// <summary>The grid drawn (cells a side); null (the default) for the atlas's second-coarsest grid.</summary>
    public int? GridSize { get; set; }

    /// <summary>Pixels per cell of the map. Default: 640 pixels over the grid, at least 12 a cell.</summary>
    public int? CellPixels { get; set; }

    /// <summary>Length of the ranked list of concepts (per direction for comparisons). Default 12.</summary>
    public int TopConcepts { get; set; } = 12;

    /// <summary>Title over the picture; null (the default) for none.</summary>
    public string? Title { get; set; }
}

/// <summary>One concept (atlas cell) of a histogram's ranked list.</summary>
/// <param name="X">Cell column.</param>
/// <param name="Y">Cell row.</param>
/// <param name="Count">The new data's rows in the cell.</param>
/// <param name="Share">Count over the new data's rows.</param>
/// <param name="AtlasShare">The cell's share of the atlas's own rows.</param>
/// <param name="RatioToAtlas">Share over AtlasShare (infinity where the atlas's own data has no row there).</param>
/// <param name="TopClass">The cell's top class, or null where the atlas has none.</param>
public readonly record struct ConceptShare(int X, int Y, int Count, double Share, double AtlasShare, double RatioToAtlas, string? TopClass);

/// <summary>
/// Pictures of concept histograms on an atlas, readable at a glance: the atlas's icons with each cell's opacity by the
/// new data's share (or, for a comparison, only the significant cells in colour), a legend with numbers, and beside the
/// map a ranked list of concepts (icon, top class, counts, shares, ratios).
/// </summary>
public static class ConceptHistogramRenderer
{
    private const int PanelWidth = 460;
    private const int RowHeight = 46;
    private const float GhostAlpha = 0.07f;

    /// <summary>The most common concepts of <paramref name="histogram"/> on one grid, most rows first.</summary>
    /// <param name="atlas">The atlas the histogram was counted on.</param>
    /// <param name="histogram">The new data's histogram.</param>
    /// <param name="gridSize">The grid.</param>
    /// <param name="count">How many at most.</param>
    public static IReadOnlyList<ConceptShare> TopConcepts(GridAtlas atlas, ConceptHistogram histogram, int gridSize, int count)
    {
        ArgumentNullException.ThrowIfNull(atlas);
        ArgumentNullException.ThrowIfNull(histogram);
        var level = atlas.Level(gridSize);
        var counts = histogram.Counts(gridSize);
        var own = level.Counts;
        long ownTotal = 0;
        foreach (int c in own)
            ownTotal += c;
        var result = new List<ConceptShare>();
        for (int i = 0; i < counts.Length; i++)
        {
            if (counts[i] == 0)
                continue;
            double share = counts[i] / (double)histogram.Total, atlasShare = ownTotal > 0 ? own[i] / (double)ownTotal : 0;
            var cell = level.Find(i % gridSize, i / gridSize);
            result.Add(new ConceptShare(i % gridSize, i / gridSize, counts[i], share, atlasShare,
                atlasShare > 0 ? share / atlasShare : double.PositiveInfinity, cell is { TopClasses.Count: > 0 } ? cell.TopClasses[0].Name : null));
        }
        return result.OrderByDescending(r => r.Count).ThenBy(r => r.Y).ThenBy(r => r.X).Take(count).ToArray();
    }

    /// <summary>Writes <see cref="RenderPng"/>'s picture to <paramref name="pngPath"/> (to a temporary name, then renamed).</summary>
    /// <param name="atlas">The atlas the histogram was counted on.</param>
    /// <param name="icons">The atlas's icons.</param>
    /// <param name="histogram">The new data's histogram.</param>
    /// <param name="pngPath">The PNG file.</param>
    /// <param name="options">Settings; null for the defaults.</param>
    public static void Render(GridAtlas atlas, AtlasIcons icons, ConceptHistogram histogram, string pngPath, ConceptHistogramImageOptions? options = null)
    {
        var png = RenderPng(atlas, icons, histogram, options);
        AtomicOutput.WriteFile(pngPath, s => s.Write(png));
    }

    /// <summary>
    /// The histogram picture: each cell's icon with opacity by the new data's share of the cell (the square root of
    /// the share relative to the largest; empty cells are a faint ghost of the atlas), the ranks of the top concepts on the map, a legend of
    /// opacities with their shares, and the ranked list with each concept's top class, count, share and ratio to the
    /// atlas's own data.
    /// </summary>
    /// <param name="atlas">The atlas the histogram was counted on.</param>
    /// <param name="icons">The atlas's icons.</param>
    /// <param name="histogram">The new data's histogram.</param>
    /// <param name="options">Settings; null for the defaults.</param>
    public static byte[] RenderPng(GridAtlas atlas, AtlasIcons icons, ConceptHistogram histogram, ConceptHistogramImageOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(icons);
        options ??= new ConceptHistogramImageOptions();
        int grid = GridOf(atlas, options);
        var counts = histogram.Counts(grid).ToArray();
        int max = Math.Max(1, counts.Max());
        var top = TopConcepts(atlas, histogram, grid, options.TopConcepts);
        using var page = new Page(atlas, icons, grid, options, 2 + top.Count);
        var level = atlas.Level(grid);
        foreach (var cell in level.Cells)
            page.Icon(cell.X, cell.Y, Opacity(counts[cell.Y * grid + cell.X], max));
        for (int r = 0; r < top.Count; r++)
            page.Badge(top[r].X, top[r].Y, (r + 1).ToString(CultureInfo.InvariantCulture), new SKColor(25, 25, 25));

        // Legend: one icon (or a grey square) at five opacities, with the share each stands for.
        var example = top.FirstOrDefault(t => icons.Get(grid, t.X, t.Y) is not null);
        bool hasExample = top.Any(t => icons.Get(grid, t.X, t.Y) is not null);
        float ly = page.MapBottom + 18;
        page.Text($"Opacity = share of the {histogram.Total:N0} images in the cell ({grid}x{grid} grid; square root scale, empty cells faint)", page.MapLeft, ly, 13, bold: false);
        for (int i = 0; i < 5; i++)
        {
            float alpha = 1f - i * 0.2f, x = page.MapLeft + i * 100;
            if (hasExample)
                page.IconAt(example.X, example.Y, x, ly + 8, 36, alpha);
            else
                page.Swatch(x, ly + 8, 36, new SKColor(60, 60, 60, (byte)(alpha * 255)));
            page.Text(Percent(alpha * alpha * max / (double)histogram.Total), x + 40, ly + 32, 13, bold: true);
        }

        // Ranked list.
        float y = page.PanelTop + 14;
        page.Text($"Top concepts of {histogram.Total:N0} images", page.PanelLeft, y, 16, bold: true);
        page.Text("rank · top class · count · share · ratio to the atlas's own data", page.PanelLeft, y + 20, 12, bold: false);
        y += 30;
        for (int r = 0; r < top.Count; r++)
        {
            var t = top[r];
            page.IconAt(t.X, t.Y, page.PanelLeft + 26, y, RowHeight - 6, 1f);
            page.Text((r + 1).ToString(CultureInfo.InvariantCulture), page.PanelLeft, y + 26, 15, bold: true);
            page.Text(t.TopClass ?? $"cell ({t.X}, {t.Y})", page.PanelLeft + 74, y + 18, 15, bold: true);
            page.Text($"{t.Count:N0} images · {Percent(t.Share)} · " + (t.AtlasShare > 0
                ? $"{Ratio(t.RatioToAtlas)} the atlas's share ({Percent(t.AtlasShare)})" : "a cell empty in the atlas's own data"),
                page.PanelLeft + 74, y + 36, 12, bold: false);
            y += RowHeight;
        }
        return page.Encode();
    }

    /// <summary>Writes <see cref="RenderComparisonPng"/>'s picture to <paramref name="pngPath"/> (to a temporary name, then renamed).</summary>
    /// <param name="atlas">The atlas both histograms were counted on.</param>
    /// <param name="icons">The atlas's icons.</param>
    /// <param name="comparison">The comparison.</param>
    /// <param name="nameA">The first dataset's name.</param>
    /// <param name="nameB">The second dataset's name.</param>
    /// <param name="pngPath">The PNG file.</param>
    /// <param name="options">Settings; null for the defaults (the grid drawn is the comparison's).</param>
    public static void RenderComparison(GridAtlas atlas, AtlasIcons icons, HistogramComparison comparison, string nameA, string nameB, string pngPath,
        ConceptHistogramImageOptions? options = null)
    {
        var png = RenderComparisonPng(atlas, icons, comparison, nameA, nameB, options);
        AtomicOutput.WriteFile(pngPath, s => s.Write(png));
    }

    /// <summary>
    /// The comparison picture: only the significant cells in full colour, framed red where the first dataset has the
    /// larger share and blue where the second has, the frame's strength by the log ratio; other cells faint. A legend
    /// of ratios, and the most over- and under-represented concepts with their counts, ratio, confidence interval and
    /// q-value.
    /// </summary>
    /// <param name="atlas">The atlas both histograms were counted on.</param>
    /// <param name="icons">The atlas's icons.</param>
    /// <param name="comparison">The comparison.</param>
    /// <param name="nameA">The first dataset's name.</param>
    /// <param name="nameB">The second dataset's name.</param>
    /// <param name="options">Settings; null for the defaults (the grid drawn is the comparison's).</param>
    public static byte[] RenderComparisonPng(GridAtlas atlas, AtlasIcons icons, HistogramComparison comparison, string nameA, string nameB,
        ConceptHistogramImageOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(comparison);
        options ??= new ConceptHistogramImageOptions();
        if (options.GridSize is int g && g != comparison.GridSize)
            throw new ArgumentException($"The comparison is on the {comparison.GridSize} grid, not {g}.", nameof(options));
        int grid = comparison.GridSize;
        var over = comparison.OverRepresented(Math.Max(1, options.TopConcepts / 2));
        var under = comparison.UnderRepresented(Math.Max(1, options.TopConcepts / 2));
        using var page = new Page(atlas, icons, grid, new ConceptHistogramImageOptions { GridSize = grid, CellPixels = options.CellPixels, Title = options.Title },
            4 + over.Count + under.Count);
        double range = Math.Max(1, comparison.Significant.Select(c => Math.Abs(c.Log2Ratio)).DefaultIfEmpty(1).Max());
        var byCell = comparison.Cells.ToDictionary(c => (c.X, c.Y));
        foreach (var cell in atlas.Level(grid).Cells)
        {
            bool significant = byCell.TryGetValue((cell.X, cell.Y), out var c) && c.Significant;
            page.Icon(cell.X, cell.Y, significant ? 1f : 0.12f);
            if (significant)
                page.Frame(cell.X, cell.Y, Diverging(c.Log2Ratio / range));
        }

        // Legend: frame colours with the ratios they stand for.
        float ly = page.MapBottom + 18;
        int significantCount = comparison.Significant.Count();
        page.Text($"{significantCount} of {comparison.Cells.Count} cells differ significantly (Fisher's exact test, Benjamini-Hochberg FDR {comparison.Options.FalseDiscoveryRate:0.##}); others are faded",
            page.MapLeft, ly, 12, bold: false);
        for (int i = 0; i < 7; i++)
        {
            double t = (i - 3) / 3.0, x = page.MapLeft + i * 86;
            page.Swatch((float)x, ly + 10, 26, Diverging(t));
            page.Text(Ratio(Math.Pow(2, t * range)), (float)x + 30, ly + 29, 12, bold: true);
        }
        page.Text($"share in {nameA} / share in {nameB}: red = more in {nameA}, blue = more in {nameB}", page.MapLeft, ly + 58, 12, bold: false);

        float y = page.PanelTop + 14;
        page.Text($"{nameA} ({comparison.TotalA:N0} images) vs {nameB} ({comparison.TotalB:N0})", page.PanelLeft, y, 16, bold: true);
        y += 28;
        foreach (var (title, list) in new[] { ($"More common in {nameA}", over), ($"More common in {nameB}", under) })
        {
            page.Text(title + (list.Count == 0 ? ": no significant cell" : ""), page.PanelLeft, y, 14, bold: true);
            y += 10;
            foreach (var c in list)
            {
                var cell = atlas.Level(grid).Find(c.X, c.Y);
                page.IconAt(c.X, c.Y, page.PanelLeft, y, RowHeight - 6, 1f);
                page.Swatch(page.PanelLeft + RowHeight - 4, y, 6, Diverging(c.Log2Ratio / range));
                page.Text(cell is { TopClasses.Count: > 0 } ? cell.TopClasses[0].Name : $"cell ({c.X}, {c.Y})", page.PanelLeft + 56, y + 16, 14, bold: true);
                page.Text($"{c.CountA:N0} vs {c.CountB:N0} · {Ratio(Math.Pow(2, c.Log2Ratio))} (95% CI {Ratio(Math.Pow(2, c.Log2RatioLow))}–{Ratio(Math.Pow(2, c.Log2RatioHigh))}) · q {c.QValue:G2}",
                    page.PanelLeft + 56, y + 34, 12, bold: false);
                y += RowHeight;
            }
            y += 14;
        }
        return page.Encode();
    }

    /// <summary>
    /// A cell's opacity in the histogram picture: the square root of its count over the largest count (so cells with a
    /// quarter of the largest share are drawn at half opacity), at least 0.15; empty cells a faint ghost.
    /// </summary>
    internal static float Opacity(int count, int max) => count > 0 ? Math.Max(0.15f, MathF.Sqrt(count / (float)Math.Max(1, max))) : GhostAlpha;

    /// <summary>Blue (-1), white (0), red (+1): the diverging scale of the heat maps.</summary>
    internal static SKColor Diverging(double t) => HeatmapRenderer.Diverging((float)t);

    private static string Percent(double share) => share >= 0.1 ? share.ToString("P0", CultureInfo.InvariantCulture)
        : share >= 0.001 ? share.ToString("P1", CultureInfo.InvariantCulture) : share.ToString("P2", CultureInfo.InvariantCulture);

    private static string Ratio(double ratio) => double.IsPositiveInfinity(ratio) ? "new to" : ratio >= 1
        ? "×" + ratio.ToString(ratio >= 10 ? "F0" : "0.0#", CultureInfo.InvariantCulture)
        : "×1/" + (1 / ratio).ToString(1 / ratio >= 10 ? "F0" : "0.0#", CultureInfo.InvariantCulture);

    private static int GridOf(GridAtlas atlas, ConceptHistogramImageOptions options)
    {
        ArgumentNullException.ThrowIfNull(atlas);
        var sizes = atlas.Levels.Select(l => l.GridSize).ToArray();
        int grid = options.GridSize ?? sizes[Math.Min(1, sizes.Length - 1)];
        if (!sizes.Contains(grid))
            throw new ArgumentException($"The atlas has no {grid}x{grid} grid; its grids are {string.Join(", ", sizes)}.", nameof(options));
        return grid;
    }

    /// <summary>A canvas with a title, the map on the left (legend under it) and a list panel on the right.</summary>
    private sealed class Page : IDisposable
    {
        private readonly SKSurface _surface;
        private readonly GridAtlas _atlas;
        private readonly AtlasIcons _icons;
        private readonly int _grid;
        private readonly int _cell;
        private readonly Dictionary<(int, int), SKBitmap?> _decoded = new();
        private readonly SKPaint _paint = new() { IsAntialias = true };

        public Page(GridAtlas atlas, AtlasIcons icons, int grid, ConceptHistogramImageOptions options, int panelRows)
        {
            _atlas = atlas;
            _icons = icons;
            _grid = grid;
            _cell = options.CellPixels ?? Math.Max(12, 640 / grid);
            if (_cell < 4 || (long)_cell * grid > 8192)
                throw new ArgumentOutOfRangeException(nameof(options), $"CellPixels {_cell} on a {grid}-cell grid gives a map outside 4..8192 pixels a side.");
            float titleHeight = options.Title is null ? 0 : 36;
            MapLeft = 16;
            MapTop = 16 + titleHeight;
            MapBottom = MapTop + _cell * grid;
            PanelLeft = MapLeft + _cell * grid + 28;
            PanelTop = MapTop;
            int width = (int)PanelLeft + PanelWidth;
            int height = (int)Math.Max(MapBottom + 100, PanelTop + 40 + panelRows * RowHeight);
            _surface = SKSurface.Create(new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Premul))
                ?? throw new InvalidOperationException($"Cannot allocate a {width}x{height} canvas.");
            Canvas.Clear(SKColors.White);
            using var border = new SKPaint { Color = new SKColor(225, 225, 225), Style = SKPaintStyle.Stroke, StrokeWidth = 1 };
            Canvas.DrawRect(MapLeft - 0.5f, MapTop - 0.5f, _cell * grid + 1, _cell * grid + 1, border);
            if (options.Title is { } title)
                Text(title, MapLeft, 30, 18, bold: true);
        }

        public SKCanvas Canvas => _surface.Canvas;

        public float MapLeft { get; }

        public float MapTop { get; }

        public float MapBottom { get; }

        public float PanelLeft { get; }

        public float PanelTop { get; }

        public void Icon(int x, int y, float alpha) => IconAt(x, y, MapLeft + x * _cell, MapTop + y * _cell, _cell, alpha);

        public void IconAt(int x, int y, float left, float top, float size, float alpha)
        {
            if (!_decoded.TryGetValue((x, y), out var bmp))
            {
                var png = _icons.Get(_grid, x, y);
                _decoded[(x, y)] = bmp = png is null ? null : AtlasIcons.Decode(png, $"cell ({x}, {y}) of the {_grid} grid");
            }
            if (bmp is null)
                return;
            _paint.Color = SKColors.White.WithAlpha((byte)Math.Round(Math.Clamp(alpha, 0, 1) * 255));
            using var icon = SKImage.FromBitmap(bmp);
            Canvas.DrawImage(icon, SKRect.Create(left, top, size, size), new SKSamplingOptions(SKFilterMode.Linear, SKMipmapMode.Linear), _paint);
        }

        public void Badge(int x, int y, string text, SKColor color)
        {
            float r = Math.Max(7, _cell * 0.22f), cx = MapLeft + x * _cell + r + 1, cy = MapTop + y * _cell + r + 1;
            using var fill = new SKPaint { Color = color.WithAlpha(220), IsAntialias = true };
            Canvas.DrawCircle(cx, cy, r, fill);
            using var font = new SKFont(SKTypeface.FromFamilyName(null, SKFontStyle.Bold), r * 1.2f);
            using var ink = new SKPaint { Color = SKColors.White, IsAntialias = true };
            Canvas.DrawText(text, cx - font.MeasureText(text) / 2, cy + r * 0.42f, font, ink);
        }

        public void Frame(int x, int y, SKColor color)
        {
            float w = Math.Max(2, _cell / 8f);
            using var stroke = new SKPaint { Color = color, Style = SKPaintStyle.Stroke, StrokeWidth = w, IsAntialias = false };
            Canvas.DrawRect(MapLeft + x * _cell + w / 2, MapTop + y * _cell + w / 2, _cell - w, _cell - w, stroke);
        }

        public void Swatch(float left, float top, float size, SKColor color)
        {
            using var fill = new SKPaint { Color = color };
            using var edge = new SKPaint { Color = new SKColor(150, 150, 150), Style = SKPaintStyle.Stroke };
            Canvas.DrawRect(left, top, size, size, fill);
            Canvas.DrawRect(left, top, size, size, edge);
        }

        public void Text(string text, float x, float y, float size, bool bold)
        {
            using var font = new SKFont(SKTypeface.FromFamilyName(null, bold ? SKFontStyle.Bold : SKFontStyle.Normal), size);
            using var ink = new SKPaint { Color = new SKColor(30, 30, 30), IsAntialias = true };
            Canvas.DrawText(text, x, y, font, ink);
        }

        public byte[] Encode()
        {
            using var image = _surface.Snapshot();
            using var data = image.Encode(SKEncodedImageFormat.Png, 100);
            return data.ToArray();
        }

        public void Dispose()
        {
            foreach (var b in _decoded.Values)
                b?.Dispose();
            _paint.Dispose();
            _surface.Dispose();
        }
    }
}
