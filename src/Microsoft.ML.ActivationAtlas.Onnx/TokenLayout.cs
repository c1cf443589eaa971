namespace Microsoft.ML.ActivationAtlas.Onnx;

/// <summary>
/// How a vision transformer lays out its token activations: a 3-D tensor [N, T, C] (or [N, C, T]) whose T tokens are
/// the class token(s), then the register tokens, then the G x G patch tokens in row-major order. A 3-D tensor is a
/// token layer when T minus those leading tokens is a square.
/// </summary>
public sealed record TokenLayout
{
    /// <summary>The layout of torchvision's and timm's ViTs: [N, T, C], one class token, no registers.</summary>
    public static TokenLayout Default { get; } = new();

    /// <summary>Whether the tensor is [N, C, T] (channels before tokens). Default false: [N, T, C].</summary>
    public bool ChannelsFirst { get; init; }

    /// <summary>Class tokens before the others (0 for a model without one). Default 1.</summary>
    /// <exception cref="ArgumentOutOfRangeException">A negative count.</exception>
    public int ClassTokens
    {
        get => _classTokens;
        init => _classTokens = value >= 0 ? value
            : throw new ArgumentOutOfRangeException(nameof(ClassTokens), value, "TokenLayout.ClassTokens must be 0 or more.");
    }

    /// <summary>Register tokens after the class token(s) and before the patches (as in DINOv2 with registers). Default 0.</summary>
    /// <exception cref="ArgumentOutOfRangeException">A negative count.</exception>
    public int RegisterTokens
    {
        get => _registerTokens;
        init => _registerTokens = value >= 0 ? value
            : throw new ArgumentOutOfRangeException(nameof(RegisterTokens), value, "TokenLayout.RegisterTokens must be 0 or more.");
    }

    private readonly int _classTokens = 1;
    private readonly int _registerTokens;

    /// <summary>Tokens before the first patch token.</summary>
    public int PrefixTokens => ClassTokens + RegisterTokens;

    /// <summary>
    /// The side G of the patch grid of a probe-run shape [1, T, C] (or [1, C, T]), or 0 when the shape is not a token
    /// layer of this layout. Per-token statistics (C = 1, e.g. LayerNorm's mean) are not layers.
    /// </summary>
    /// <param name="shape">A tensor shape, batch (1) first.</param>
    public int GridSide(IReadOnlyList<long> shape)
    {
        ArgumentNullException.ThrowIfNull(shape);
        if (shape.Count != 3 || shape[0] != 1 || ClassTokens < 0 || RegisterTokens < 0 || (ChannelsFirst ? shape[1] : shape[2]) < 2)
            return 0;
        long patches = (ChannelsFirst ? shape[2] : shape[1]) - PrefixTokens;
        if (patches < 1)
            return 0;
        long side = (long)Math.Round(Math.Sqrt(patches));
        return side * side == patches ? (int)side : 0;
    }

    /// <summary>
    /// Why a probe-run shape [1, T, C] (or [1, C, T]) is not a token layer of this layout, e.g. "[1, 65, 128] as
    /// [N, C, T] has T = 128 tokens: 1 class + 0 register tokens leave 127 patch tokens, not a square grid"; null when it is one.
    /// </summary>
    /// <param name="shape">A tensor shape, batch (1) first.</param>
    public string? Mismatch(IReadOnlyList<long> shape)
    {
        ArgumentNullException.ThrowIfNull(shape);
        if (GridSide(shape) > 0)
            return null;
        string text = $"[{string.Join(", ", shape)}]";
        if (shape.Count != 3)
            return $"{text} is {shape.Count}-D; a token layer is 3-D ({this})";
        long tokens = ChannelsFirst ? shape[2] : shape[1], channels = ChannelsFirst ? shape[1] : shape[2];
        string head = $"{text} read as {(ChannelsFirst ? "[N, C, T]" : "[N, T, C]")} has T = {tokens} tokens and C = {channels} channels";
        if (channels < 2)
            return $"{head}: one channel per token is a per-token statistic, not a layer";
        long patches = tokens - PrefixTokens;
        if (patches < 1)
            return $"{head}: {ClassTokens} class + {RegisterTokens} register tokens leave no patch token";
        return $"{head}: {ClassTokens} class + {RegisterTokens} register tokens leave {patches} patch tokens, not a square grid";
    }

    /// <summary>The layout, e.g. <c>[N, T, C], 1 class token, 0 register tokens</c>.</summary>
    public override string ToString() =>
        $"{(ChannelsFirst ? "[N, C, T]" : "[N, T, C]")}, {ClassTokens} class token{(ClassTokens == 1 ? "" : "s")}, {RegisterTokens} register token{(RegisterTokens == 1 ? "" : "s")}";
}
