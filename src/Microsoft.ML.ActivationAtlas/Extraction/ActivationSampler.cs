using Microsoft.ML.ActivationAtlas.Numerics;
using System.Numerics.Tensors;
using Microsoft.ML.ActivationAtlas.Onnx;

namespace Microsoft.ML.ActivationAtlas.Extraction;

/// <summary>
/// Chooses positions on the reference grid (the first layer's H x W, or its patch grid for a token layer) and gathers
/// activation vectors from spatial layers [N, C, H, W] and token layers [N, T, C] / [N, C, T].
/// </summary>
internal sealed class ActivationSampler
{
    /// <summary>The position reported for <see cref="ActivationSampling.ClassToken"/> rows: [-2, -2].</summary>
    public const int ClassTokenPosition = -2;

    private readonly ActivationSampling _sampling;
    private readonly int _seed;
    private readonly int _margin;
    private readonly long _firstRow;

    public ActivationSampler(ActivationSampling sampling, int seed, int margin, OnnxLayerInfo reference, long firstRow = 0)
    {
        _firstRow = firstRow;
        _sampling = sampling;
        _seed = seed;
        int gridHeight = reference.Height, gridWidth = reference.Width;
        GridHeight = gridHeight;
        GridWidth = gridWidth;
        if (margin < 0)
            throw new ArgumentOutOfRangeException(nameof(margin), margin, "The margin must be zero or positive.");
        // Patch tokens on the border of a ViT's grid see padding-like image borders: never draw them.
        _margin = reference.Tokens is null ? margin : Math.Max(margin, 1);
        margin = _margin;
        if (sampling == ActivationSampling.ClassToken && (reference.Tokens is not { ClassTokens: > 0 }))
            throw new ArgumentException($"ClassToken sampling needs a token layer with a class token; layer '{reference.Name}' is " +
                (reference.Tokens is null ? $"spatial {reference.ShapeText}." : "a token layer without one (TokenLayout.ClassTokens = 0)."));
        if (sampling == ActivationSampling.RandomPosition && (gridHeight - 2 * margin <= 0 || gridWidth - 2 * margin <= 0))
            throw new ArgumentOutOfRangeException(nameof(margin), margin,
                $"A margin of {margin} leaves no position on the {gridHeight}x{gridWidth} layer grid; use a margin below {Math.Min(gridHeight, gridWidth) / 2.0}.");
    }

    public int GridHeight { get; }

    public int GridWidth { get; }

    /// <summary>Output rows per image.</summary>
    public int RowsPerImage => _sampling == ActivationSampling.AllPositions ? GridHeight * GridWidth : 1;

    /// <summary>
    /// The position(s) of an image's output rows, [y, x] on the reference grid ([-1, -1] for the spatial mean,
    /// [-2, -2] for the class token); <paramref name="sourceRow"/> counts from the first row of the input.
    /// </summary>
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
            case ActivationSampling.ClassToken:
                ys[0] = ClassTokenPosition;
                xs[0] = ClassTokenPosition;
                break;
            case ActivationSampling.Center:
                ys[0] = GridHeight / 2;
                xs[0] = GridWidth / 2;
                break;
            default:
                ulong h = SplitMix64.Mix(((ulong)(uint)_seed * SplitMix64.Golden ^ (ulong)sourceRow) + SplitMix64.Golden);
                int rangeY = GridHeight - 2 * _margin, rangeX = GridWidth - 2 * _margin;
                ys[0] = _margin + (int)((h & 0xFFFFFFFF) % (ulong)rangeY);
                xs[0] = _margin + (int)((h >> 32) % (ulong)rangeX);
                break;
        }
    }

    /// <summary>
    /// Writes the C activations of image <paramref name="image"/> of a layer's output at reference position (y, x)
    /// (mapped proportionally onto the layer's own grid), their mean over the grid (y = -1), or the class token
    /// (y = -2, token layers).
    /// </summary>
    public void Gather(ReadOnlySpan<float> output, OnnxLayerInfo layer, int image, int y, int x, Span<float> dst)
    {
        int channels = layer.Channels, height = layer.Height, width = layer.Width;
        if (layer.Tokens is { } tokens)
        {
            GatherToken(output, layer, tokens, image, y < 0 ? y : LayerY(y, height), y < 0 ? x : LayerX(x, width), dst);
            return;
        }
        int hw = height * width;
        var block = output.Slice(image * channels * hw, channels * hw);
        if (y < 0)
        {
            float inv = 1f / hw;
            for (int c = 0; c < channels; c++)
                dst[c] = TensorPrimitives.Sum(block.Slice(c * hw, hw)) * inv;
            return;
        }
        int offset = LayerY(y, height) * width + LayerX(x, width);
        for (int c = 0; c < channels; c++)
            dst[c] = block[c * hw + offset];
    }

    private int LayerY(int y, int height) => height == GridHeight ? y : Math.Min(height - 1, (int)((y + 0.5) * height / GridHeight));

    private int LayerX(int x, int width) => width == GridWidth ? x : Math.Min(width - 1, (int)((x + 0.5) * width / GridWidth));

    /// <summary>A token layer's vector at patch (y, x), the mean of its patch tokens (y = -1) or its class token (y = -2).</summary>
    private static void GatherToken(ReadOnlySpan<float> output, OnnxLayerInfo layer, TokenLayout tokens, int image, int y, int x, Span<float> dst)
    {
        int channels = layer.Channels, count = layer.TokenCount, side = layer.Width, patches = side * side;
        var block = output.Slice(image * channels * count, channels * count);
        if (y == ClassTokenPosition && tokens.ClassTokens == 0)
            throw new InvalidOperationException($"Layer '{layer.Name}' has no class token (TokenLayout.ClassTokens = 0).");
        if (!tokens.ChannelsFirst)
        {
            if (y == -1)
            {
                var sum = dst[..channels];
                sum.Clear();
                for (int t = 0; t < patches; t++)
                    TensorPrimitives.Add(sum, block.Slice((tokens.PrefixTokens + t) * channels, channels), sum);
                TensorPrimitives.Multiply(sum, 1f / patches, sum);
                return;
            }
            int token = y == ClassTokenPosition ? 0 : tokens.PrefixTokens + y * side + x;
            block.Slice(token * channels, channels).CopyTo(dst);
            return;
        }
        for (int c = 0; c < channels; c++)
        {
            var row = block.Slice(c * count, count);
            dst[c] = y == -1 ? TensorPrimitives.Sum(row.Slice(tokens.PrefixTokens, patches)) / patches
                : row[y == ClassTokenPosition ? 0 : tokens.PrefixTokens + y * side + x];
        }
    }
}
