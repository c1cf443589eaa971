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
    private readonly int _lowY, _highY, _lowX, _highX;

    /// <param name="sampling">Which position(s) become rows.</param>
    /// <param name="seed">Seed of the random positions.</param>
    /// <param name="margin">Cells next to the edges never drawn.</param>
    /// <param name="reference">The layer whose grid the positions are on.</param>
    /// <param name="firstRow">The index of the first input row in the whole dataset.</param>
    /// <param name="aligned">
    /// Layers read at the same image location (see <see cref="LayerY"/>): random positions are drawn only where the
    /// mapped cell of every one of them is at least <paramref name="margin"/> cells from its edges. Null: only the
    /// reference grid's margin applies.
    /// </param>
    public ActivationSampler(ActivationSampling sampling, int seed, int margin, OnnxLayerInfo reference, long firstRow = 0,
        IReadOnlyList<OnnxLayerInfo>? aligned = null)
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
        (_lowY, _highY, _lowX, _highX) = (margin, gridHeight - margin, margin, gridWidth - margin);
        if (sampling == ActivationSampling.RandomPosition && aligned is not null)
        {
            foreach (var layer in aligned)
            {
                // The reference cells whose centre falls in the layer's cells [margin, size - margin).
                int layerMargin = layer.Tokens is null ? margin : Math.Max(margin, 1);
                (_lowY, _highY) = Narrow(_lowY, _highY, gridHeight, layer.Height, layerMargin);
                (_lowX, _highX) = Narrow(_lowX, _highX, gridWidth, layer.Width, layerMargin);
                if (_highY <= _lowY || _highX <= _lowX)
                    throw new ArgumentOutOfRangeException(nameof(margin), margin,
                        $"A margin of {margin} cells on layer '{layer.Name}' ({layer.Height}x{layer.Width}) leaves no image location inside the margins of every layer; use a smaller margin.");
            }
        }
    }

    /// <summary>Reference cells of the image area in a mapped layer's cells [margin, size - margin), intersected with [low, high).</summary>
    private static (int Low, int High) Narrow(int low, int high, int referenceSize, int size, int margin)
    {
        int lo = high, hi = low;
        for (int c = low; c < high; c++)
        {
            int mapped = Map(c, referenceSize, size);
            if (mapped >= margin && mapped < size - margin)
            {
                lo = Math.Min(lo, c);
                hi = Math.Max(hi, c + 1);
            }
        }
        return (lo, hi);
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
                int rangeY = _highY - _lowY, rangeX = _highX - _lowX;
                ys[0] = _lowY + (int)((h & 0xFFFFFFFF) % (ulong)rangeY);
                xs[0] = _lowX + (int)((h >> 32) % (ulong)rangeX);
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

    /// <summary>
    /// The row of a layer of <paramref name="height"/> rows that reference row <paramref name="y"/> maps to: the cell
    /// containing the reference cell's centre, both grids spanning the network's input (cell i of an H-row grid over
    /// an S-pixel input is centred at (i + 0.5) S / H pixels).
    /// </summary>
    public int LayerY(int y, int height) => Map(y, GridHeight, height);

    /// <summary>The column of a layer of <paramref name="width"/> columns that reference column <paramref name="x"/> maps to (as <see cref="LayerY"/>).</summary>
    public int LayerX(int x, int width) => Map(x, GridWidth, width);

    private static int Map(int cell, int referenceSize, int size) =>
        size == referenceSize ? cell : Math.Min(size - 1, (int)((cell + 0.5) * size / referenceSize));

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
