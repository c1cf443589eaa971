using Microsoft.ML.ActivationAtlas.Binning;
using SkiaSharp;

namespace Microsoft.ML.ActivationAtlas.Rendering;

/// <summary>Draws an atlas as one PNG: each kept cell's icon on a canvas at the cell's position (cell (0, 0) top-left).</summary>
public static class AtlasImageRenderer
{
    /// <summary>Renders the atlas and writes it to <paramref name="pngPath"/> (written to a temporary name, then renamed).</summary>
    /// <param name="atlas">The aggregated atlas.</param>
    /// <param name="icons">The icons of its cells.</param>
    /// <param name="pngPath">The output PNG file.</param>
    /// <param name="options">Settings; null for the defaults.</param>
    public static void Render(GridAtlas atlas, AtlasIcons icons, string pngPath, AtlasImageOptions? options = null)
    {
        var png = RenderPng(atlas, icons, options);
        AtomicOutput.WriteFile(pngPath, s => s.Write(png));
    }

    /// <summary>Renders the atlas to PNG bytes.</summary>
    /// <param name="atlas">The aggregated atlas.</param>
    /// <param name="icons">The icons of its cells.</param>
    /// <param name="options">Settings; null for the defaults.</param>
    public static byte[] RenderPng(GridAtlas atlas, AtlasIcons icons, AtlasImageOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(atlas);
        ArgumentNullException.ThrowIfNull(icons);
        options ??= new AtlasImageOptions();
        var level = options.GridSize is int g ? atlas.Level(g) : atlas.Levels[0];
        int cellPx = options.CellPixels;
        if (cellPx < 4 || (long)cellPx * level.GridSize > 16384)
            throw new ArgumentOutOfRangeException(nameof(options), $"CellPixels {cellPx} on a {level.GridSize}-cell grid gives an image outside 4..16384 pixels a side.");
        if (options.ClassIndex is int ci && (ci < 0 || ci >= atlas.ClassCount))
            throw new ArgumentOutOfRangeException(nameof(options), $"ClassIndex {ci} is outside the atlas's {atlas.ClassCount} classes.");
        if (!SKColor.TryParse(options.Background, out var background))
            throw new ArgumentException($"Background '{options.Background}' is not a colour such as #ffffff.", nameof(options));

        int side = cellPx * level.GridSize;
        var axes = options.Axes;
        float axisFont = Math.Clamp(side / 48f, 12f, 28f);
        // Margins for the axis captions: below (the horizontal axis) and on the left (the vertical one).
        int marginLeft = axes?.Vertical is { Length: > 0 } ? (int)MathF.Ceiling(axisFont * 2f) : 0;
        int marginBottom = axes is { Left: not null } or { Right: not null } or { Horizontal: not null } ? (int)MathF.Ceiling(axisFont * (axes.Horizontal is null ? 2f : 3.4f)) : 0;
        using var surface = SKSurface.Create(new SKImageInfo(side + marginLeft, side + marginBottom, SKColorType.Rgba8888, SKAlphaType.Premul))
            ?? throw new InvalidOperationException($"Cannot allocate a {side}x{side} canvas.");
        var canvas = surface.Canvas;
        canvas.Clear(background);
        canvas.Translate(marginLeft, 0);

        var cells = level.Cells;
        float densityRef = DensityReference(cells);
        float classMax = options.ClassIndex is int c ? cells.Select(x => x.MeanAttribution.Span[c]).DefaultIfEmpty(0).Max() : 0;
        using var paint = new SKPaint { IsAntialias = true };
        foreach (var cell in cells)
        {
            var png = icons.Get(level.GridSize, cell.X, cell.Y);
            if (png is null)
                continue;
            float scale = options.SizeByDensity ? Math.Clamp(MathF.Sqrt(cell.Count / densityRef), 0.25f, 1f) : 1f;
            float alpha = 1f;
            if (options.ClassIndex is int k)
                alpha = classMax > 0 ? Math.Clamp(cell.MeanAttribution.Span[k] / classMax, 0f, 1f) : 0f;
            if (alpha <= 0.01f)
                continue;
            using var bmp = AtlasIcons.Decode(png, $"cell ({cell.X}, {cell.Y}) of the {level.GridSize} grid");
            float size = cellPx * scale;
            float left = cell.X * cellPx + (cellPx - size) / 2, top = cell.Y * cellPx + (cellPx - size) / 2;
            paint.Color = SKColors.White.WithAlpha((byte)Math.Round(alpha * 255));
            using var icon = SKImage.FromBitmap(bmp);
            canvas.DrawImage(icon, new SKRect(left, top, left + size, top + size), new SKSamplingOptions(SKFilterMode.Linear, SKMipmapMode.Linear), paint);
        }
        if (options.Labels && options.ClassIndex is null && atlas.ClassCount > 0)
            DrawLabels(canvas, Labels(level, cellPx, options.LabelOptions));
        if (axes is not null)
            DrawAxes(canvas, axes, side, marginLeft, axisFont);
        using var image = surface.Snapshot();
        using var data = image.Encode(SKEncodedImageFormat.Png, 100);
        return data.ToArray();
    }

    /// <summary>
    /// The labels <see cref="RenderPng"/> draws on <paramref name="level"/> at <paramref name="cellPixels"/> per cell:
    /// <see cref="AtlasLabels.Place"/> with a font of a quarter of a cell, at most 20 pixels.
    /// </summary>
    /// <param name="level">The grid drawn.</param>
    /// <param name="cellPixels">Pixels per cell.</param>
    /// <param name="options">The rule's settings; null for the defaults.</param>
    public static IReadOnlyList<AtlasLabel> Labels(AtlasLevel level, int cellPixels, AtlasLabelOptions? options = null)
    {
        using var font = LabelFont(cellPixels);
        return AtlasLabels.Place(level, cellPixels, font.Size, t => TextWidth(font, t), options);
    }

    private static SKFont LabelFont(int cellPixels) => LabelFont(Math.Min(20f, cellPixels / 4f));

    private static SKFont LabelFont(float size) => new(SKTypeface.FromFamilyName(null, SKFontStyle.Bold), size);

    private static void DrawLabels(SKCanvas canvas, IReadOnlyList<AtlasLabel> labels)
    {
        if (labels.Count == 0)
            return;
        using var font = LabelFont(labels[0].Height / AtlasLabels.HeightFonts);
        using var box = new SKPaint { Color = new SKColor(255, 255, 255, 215), IsAntialias = true };
        using var text = new SKPaint { Color = new SKColor(20, 20, 20), IsAntialias = true };
        foreach (var l in labels)
        {
            float f = l.Height / AtlasLabels.HeightFonts;
            canvas.DrawRoundRect(SKRect.Create(l.Left, l.Top, l.Width, l.Height), f * 0.25f, f * 0.25f, box);
            canvas.DrawText(l.Text, l.Left + AtlasLabels.PaddingFonts * f, l.Top + l.Height * 0.5f + f * 0.36f, font, text);
        }
    }

    private static void DrawAxes(SKCanvas canvas, AtlasAxes axes, int side, int marginLeft, float fontPixels)
    {
        using var font = new SKFont(SKTypeface.FromFamilyName(null, SKFontStyle.Bold), fontPixels);
        using var small = new SKFont(SKTypeface.Default, fontPixels * 0.9f);
        using var ink = new SKPaint { Color = new SKColor(40, 40, 40), IsAntialias = true, StrokeWidth = Math.Max(1.5f, fontPixels / 10f) };
        float y = side + fontPixels * 1.3f;
        if (axes.Left is not null || axes.Right is not null)
        {
            // An arrow along the bottom, pointing both ways, with the two ends named.
            float arrow = fontPixels * 0.5f, lineY = side + fontPixels * 0.35f;
            canvas.DrawLine(0, lineY, side, lineY, ink);
            canvas.DrawLine(0, lineY, arrow, lineY - arrow * 0.6f, ink);
            canvas.DrawLine(0, lineY, arrow, lineY + arrow * 0.6f, ink);
            canvas.DrawLine(side, lineY, side - arrow, lineY - arrow * 0.6f, ink);
            canvas.DrawLine(side, lineY, side - arrow, lineY + arrow * 0.6f, ink);
            if (axes.Left is { } left)
                canvas.DrawText("\u2190 " + left, 0, y, font, ink);
            if (axes.Right is { } right)
                DrawText(canvas, right + " \u2192", side, y, 1f, font, ink);
        }
        if (axes.Horizontal is { } horizontal)
            DrawText(canvas, horizontal, side / 2f, y + fontPixels * 1.4f, 0.5f, small, ink);
        if (axes.Vertical is { } vertical)
        {
            canvas.Save();
            canvas.Translate(-marginLeft + fontPixels * 1.3f, side / 2f);
            canvas.RotateDegrees(-90);
            DrawText(canvas, vertical, 0, 0, 0.5f, small, ink);
            canvas.Restore();
        }
    }

    private static float TextWidth(SKFont font, string text) => font.MeasureText(text);

    /// <summary>Draws text with its anchor a fraction <paramref name="align"/> along it (0 left, 0.5 centre, 1 right).</summary>
    private static void DrawText(SKCanvas canvas, string text, float x, float y, float align, SKFont font, SKPaint paint)
        => canvas.DrawText(text, x - align * TextWidth(font, text), y, font, paint);

    /// <summary>The count at which an icon reaches full size: the 90th percentile of the cells' counts.</summary>
    internal static float DensityReference(IReadOnlyList<AtlasCell> cells)
    {
        if (cells.Count == 0)
            return 1;
        var counts = cells.Select(c => (float)c.Count).OrderBy(c => c).ToArray();
        return Math.Max(1f, GridNormalization.Percentile(counts, 90));
    }
}
