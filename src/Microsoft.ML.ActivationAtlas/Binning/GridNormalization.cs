using System.Globalization;

namespace Microsoft.ML.ActivationAtlas.Binning;

/// <summary>
/// The fitted normalisation of a 2-D layout to the unit square, as in the activation-atlas article: per axis, the
/// low and high percentiles (1st and 99th by default) are widened by a relative margin (10%), coordinates are
/// clipped to that range and scaled to [0, 1]. The bounds are fitted once, so new data lands in the same cells.
/// </summary>
public sealed class GridNormalization
{
    internal GridNormalization(float minX, float maxX, float minY, float maxY)
    {
        MinX = minX;
        MaxX = maxX;
        MinY = minY;
        MaxY = maxY;
    }

    /// <summary>Layout x mapped to 0 (low percentile minus margin).</summary>
    public float MinX { get; }

    /// <summary>Layout x mapped to 1 (high percentile plus margin).</summary>
    public float MaxX { get; }

    /// <summary>Layout y mapped to 0.</summary>
    public float MinY { get; }

    /// <summary>Layout y mapped to 1.</summary>
    public float MaxY { get; }

    /// <summary>Maps a layout point to the unit square (clipped).</summary>
    public (float U, float V) Normalize(float x, float y) => (Scale(x, MinX, MaxX), Scale(y, MinY, MaxY));

    private static float Scale(float value, float min, float max)
    {
        if (!(max > min))
            return 0.5f;
        float u = (value - min) / (max - min);
        return u < 0f ? 0f : u > 1f ? 1f : u;
    }

    /// <summary>
    /// Fits the bounds on interleaved (x, y) points. Percentiles interpolate linearly between order statistics
    /// (as numpy's default does).
    /// </summary>
    internal static GridNormalization Fit(ReadOnlySpan<float> xy, float lowPercentile, float highPercentile, float margin)
    {
        if (xy.Length < 2 || xy.Length % 2 != 0)
            throw new ArgumentException("At least one 2-D layout point is needed to fit the grid.", nameof(xy));
        int n = xy.Length / 2;
        var axis = new float[n];
        var (minX, maxX) = Bounds(xy, 0, axis, lowPercentile, highPercentile, margin);
        var (minY, maxY) = Bounds(xy, 1, axis, lowPercentile, highPercentile, margin);
        return new GridNormalization(minX, maxX, minY, maxY);
    }

    private static (float, float) Bounds(ReadOnlySpan<float> xy, int offset, float[] axis, float low, float high, float margin)
    {
        for (int i = 0; i < axis.Length; i++)
        {
            float v = xy[2 * i + offset];
            if (!float.IsFinite(v))
                throw new InvalidOperationException($"Layout point {i} has a non-finite {(offset == 0 ? "x" : "y")} coordinate ({v.ToString(CultureInfo.InvariantCulture)}).");
            axis[i] = v;
        }
        Array.Sort(axis);
        float lo = Percentile(axis, low);
        float hi = Percentile(axis, high);
        float range = hi - lo;
        return (lo - margin * range, hi + margin * range);
    }

    /// <summary>Linear-interpolated percentile of sorted values (<paramref name="percent"/> in [0, 100]).</summary>
    internal static float Percentile(ReadOnlySpan<float> sorted, float percent)
    {
        double pos = percent / 100.0 * (sorted.Length - 1);
        int i = (int)Math.Floor(pos);
        if (i >= sorted.Length - 1)
            return sorted[^1];
        double frac = pos - i;
        return (float)(sorted[i] + frac * (sorted[i + 1] - (double)sorted[i]));
    }
}
