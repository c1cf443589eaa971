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
    public int ClassTokens { get; init; } = 1;

    /// <summary>Register tokens after the class token(s) and before the patches (as in DINOv2 with registers). Default 0.</summary>
    public int RegisterTokens { get; init; }

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
}
