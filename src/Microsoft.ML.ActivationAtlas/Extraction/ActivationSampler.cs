using System.Numerics.Tensors;

namespace Microsoft.ML.ActivationAtlas.Extraction;

/// <summary>Chooses positions on the reference grid (the first layer's H x W) and gathers activation vectors.</summary>
internal sealed class ActivationSampler
{
    private readonly ActivationSampling _sampling;
    private readonly int _seed;
    private readonly int _margin;
    private readonly long _firstRow;

    public ActivationSampler(ActivationSampling sampling, int seed, int margin, int gridHeight, int gridWidth, long firstRow = 0)
    {
        _firstRow = firstRow;
        _sampling = sampling;
        _seed = seed;
        _margin = margin;
        GridHeight = gridHeight;
        GridWidth = gridWidth;
        if (margin < 0)
            throw new ArgumentOutOfRangeException(nameof(margin), margin, "The margin must be zero or positive.");
        if (sampling == ActivationSampling.RandomPosition && (gridHeight - 2 * margin <= 0 || gridWidth - 2 * margin <= 0))
            throw new ArgumentOutOfRangeException(nameof(margin), margin,
                $"A margin of {margin} leaves no position on the {gridHeight}x{gridWidth} layer grid; use a margin below {Math.Min(gridHeight, gridWidth) / 2.0}.");
    }

    public int GridHeight { get; }

    public int GridWidth { get; }

    /// <summary>Output rows per image.</summary>
    public int RowsPerImage => _sampling == ActivationSampling.AllPositions ? GridHeight * GridWidth : 1;

    /// <summary>The position(s) of an image's output rows, [y, x] on the reference grid ([-1, -1] for the spatial mean); <paramref name="sourceRow"/> counts from the first row of the input.</summary>
    public void Positions(long sourceRow, Span<int> ys, Span<int> xs)
    {
        sourceRow += _firstRow; // the row's index in the whole dataset
        switch (_sampling)
        {
            case ActivationSampling.AllPositions:
                for (int y = 0, k = 0; y < GridHeight; y++)
                    for (int x = 0; x < GridWidth; x++, k++)
                    {
                        ys[k] = y;
                        xs[k] = x;
                    }
                break;
            case ActivationSampling.SpatialMean:
                ys[0] = -1;
                xs[0] = -1;
                break;
            case ActivationSampling.Center:
                ys[0] = GridHeight / 2;
                xs[0] = GridWidth / 2;
                break;
            default:
                ulong h = SplitMix((ulong)(uint)_seed * 0x9E3779B97F4A7C15UL ^ (ulong)sourceRow);
                int rangeY = GridHeight - 2 * _margin, rangeX = GridWidth - 2 * _margin;
                ys[0] = _margin + (int)((h & 0xFFFFFFFF) % (ulong)rangeY);
                xs[0] = _margin + (int)((h >> 32) % (ulong)rangeX);
                break;
        }
    }

    /// <summary>
    /// Writes the C activations of image <paramref name="image"/> of a layer output [N, C, H, W] at reference
    /// position (y, x) (mapped proportionally onto the layer's own grid) or their spatial mean.
    /// </summary>
    public void Gather(ReadOnlySpan<float> layer, int channels, int height, int width, int image, int y, int x, Span<float> dst)
    {
        int hw = height * width;
        var block = layer.Slice(image * channels * hw, channels * hw);
        if (y < 0)
        {
            float inv = 1f / hw;
            for (int c = 0; c < channels; c++)
                dst[c] = TensorPrimitives.Sum(block.Slice(c * hw, hw)) * inv;
            return;
        }
        int ly = height == GridHeight ? y : Math.Min(height - 1, (int)((y + 0.5) * height / GridHeight));
        int lx = width == GridWidth ? x : Math.Min(width - 1, (int)((x + 0.5) * width / GridWidth));
        int offset = ly * width + lx;
        for (int c = 0; c < channels; c++)
            dst[c] = block[c * hw + offset];
    }

    private static ulong SplitMix(ulong z)
    {
        z += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}
