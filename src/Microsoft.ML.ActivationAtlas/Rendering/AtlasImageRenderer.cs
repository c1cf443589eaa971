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
        using var surface = SKSurface.Create(new SKImageInfo(side, side, SKColorType.Rgba8888, SKAlphaType.Premul))
            ?? throw new InvalidOperationException($"Cannot allocate a {side}x{side} canvas.");
        var canvas = surface.Canvas;
        canvas.Clear(background);

        var cells = level.Cells;
        float densityRef = DensityReference(cells);
        float classMax = options.ClassIndex is int c ? cells.Select(x => x.MeanAttribution.Span[c]).DefaultIfEmpty(0).Max() : 0;
        using var paint = new SKPaint { IsAntialias = true };
        using var font = new SKFont(SKTypeface.Default, Math.Max(8, cellPx / 6f));
        using var textPaint = new SKPaint { Color = SKColors.Black, IsAntialias = true };
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
            if (options.Labels && cell.TopClasses.Count > 0)
                canvas.DrawText(cell.TopClasses[0].Name, cell.X * cellPx + 2, (cell.Y + 1) * cellPx - 2, font, textPaint);
        }
        using var image = surface.Snapshot();
        using var data = image.Encode(SKEncodedImageFormat.Png, 100);
        return data.ToArray();
    }

    /// <summary>The count at which an icon reaches full size: the 90th percentile of the cells' counts.</summary>
    internal static float DensityReference(IReadOnlyList<AtlasCell> cells)
    {
        if (cells.Count == 0)
            return 1;
        var counts = cells.Select(c => (float)c.Count).OrderBy(c => c).ToArray();
        return Math.Max(1f, GridNormalization.Percentile(counts, 90));
    }
}
