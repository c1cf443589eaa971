using Microsoft.ML.ActivationAtlas.Histogram;
using SkiaSharp;

namespace Microsoft.ML.ActivationAtlas.Rendering;

/// <summary>
/// Heat-map PNGs of concept histograms: counts on a white-to-dark-red scale, differences on a diverging
/// blue-white-red scale centred on zero. Cell (0, 0) is top-left, as in the atlas image.
/// </summary>
public static class HeatmapRenderer
{
    /// <summary>Writes the counts of one grid of <paramref name="histogram"/> as a heat map.</summary>
    /// <param name="histogram">The concept histogram.</param>
    /// <param name="gridSize">The grid drawn.</param>
    /// <param name="pngPath">The output PNG file (written to a temporary name, then renamed).</param>
    /// <param name="cellPixels">Pixels per cell. Default 16.</param>
    public static void RenderCounts(ConceptHistogram histogram, int gridSize, string pngPath, int cellPixels = 16)
    {
        ArgumentNullException.ThrowIfNull(histogram);
        var counts = histogram.Counts(gridSize);
        float max = 0;
        var values = new float[counts.Length];
        for (int i = 0; i < counts.Length; i++)
            max = Math.Max(max, values[i] = counts[i]);
        var png = Draw(values, gridSize, cellPixels, v => Sequential(max > 0 ? v / max : 0));
        AtomicOutput.WriteFile(pngPath, s => s.Write(png));
    }

    /// <summary>Writes a per-cell difference (e.g. <see cref="ConceptHistogram.Difference"/>) as a diverging heat map.</summary>
    /// <param name="difference">Row-major values, <paramref name="gridSize"/> squared of them.</param>
    /// <param name="gridSize">Cells a side.</param>
    /// <param name="pngPath">The output PNG file (written to a temporary name, then renamed).</param>
    /// <param name="cellPixels">Pixels per cell. Default 16.</param>
    public static void RenderDifference(ReadOnlySpan<float> difference, int gridSize, string pngPath, int cellPixels = 16)
    {
        if (difference.Length != gridSize * gridSize)
            throw new ArgumentException($"A {gridSize}x{gridSize} grid needs {gridSize * gridSize} values, not {difference.Length}.", nameof(difference));
        float max = 0;
        foreach (var d in difference)
            max = Math.Max(max, MathF.Abs(d));
        var png = Draw(difference.ToArray(), gridSize, cellPixels, v => Diverging(max > 0 ? v / max : 0));
        AtomicOutput.WriteFile(pngPath, s => s.Write(png));
    }

    /// <summary>White (0) to dark red (1).</summary>
    internal static SKColor Sequential(float t)
    {
        t = Math.Clamp(t, 0, 1);
        return new SKColor((byte)(255 - 115 * t), (byte)(255 - 255 * MathF.Sqrt(t)), (byte)(255 - 255 * MathF.Sqrt(t)));
    }

    /// <summary>Blue (-1), white (0), red (+1).</summary>
    internal static SKColor Diverging(float t)
    {
        t = Math.Clamp(t, -1, 1);
        byte fade = (byte)(255 - 255 * MathF.Abs(t));
        return t >= 0 ? new SKColor(255, fade, fade) : new SKColor(fade, fade, 255);
    }

    private static byte[] Draw(float[] values, int gridSize, int cellPixels, Func<float, SKColor> color)
    {
        if (cellPixels < 1 || (long)cellPixels * gridSize > 16384)
            throw new ArgumentOutOfRangeException(nameof(cellPixels), $"{cellPixels} pixels per cell on a {gridSize}-cell grid is outside 1..16384 pixels a side.");
        int side = gridSize * cellPixels;
        using var bmp = new SKBitmap(new SKImageInfo(side, side, SKColorType.Rgba8888, SKAlphaType.Opaque));
        using (var canvas = new SKCanvas(bmp))
        using (var paint = new SKPaint())
        {
            for (int y = 0; y < gridSize; y++)
                for (int x = 0; x < gridSize; x++)
                {
                    paint.Color = color(values[y * gridSize + x]);
                    canvas.DrawRect(x * cellPixels, y * cellPixels, cellPixels, cellPixels, paint);
                }
        }
        return AtlasIcons.Encode(bmp);
    }
}
