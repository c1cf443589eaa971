using Microsoft.ML.OnnxRuntime.Tensors;

namespace Microsoft.ML.ActivationAtlas.Onnx;

/// <summary>One tensor of a model as seen in a probe run (see <see cref="OnnxLayers.Probe"/>).</summary>
/// <param name="Name">The tensor's name in the graph.</param>
/// <param name="FriendlyName">A short name (the module, e.g. <c>inception4c</c>) where the graph's naming gives one; else null.</param>
/// <param name="OpType">The operator producing it (e.g. <c>Relu</c>).</param>
/// <param name="NodeName">The producing node's name.</param>
/// <param name="ElementType">The element type.</param>
/// <param name="Shape">The shape in the probe run, batch (1) first.</param>
/// <param name="Order">The producing node's position in the graph.</param>
public sealed record OnnxLayerInfo(string Name, string? FriendlyName, string OpType, string NodeName,
    TensorElementType ElementType, long[] Shape, int Order)
{
    /// <summary>
    /// The token layout when this is a token layer of a vision transformer ([N, T, C] or [N, C, T], see
    /// <see cref="TokenLayout"/>); null for other tensors. Set by <see cref="OnnxLayers.Probe"/>.
    /// </summary>
    public TokenLayout? Tokens { get; init; }

    /// <summary>
    /// Whether activations can be extracted from this tensor: a 4-D float tensor [N, C, H, W] (a spatial layer) or a
    /// float token layer (<see cref="Tokens"/>, on the G x G patch grid).
    /// </summary>
    public bool IsSelectable => ElementType == TensorElementType.Float && (Shape.Length == 4 || Tokens is not null);

    /// <summary>Channels (C) of a spatial or token layer.</summary>
    public int Channels => Shape.Length == 4 ? (int)Shape[1]
        : Tokens is { } t ? (int)(t.ChannelsFirst ? Shape[1] : Shape[2]) : throw NotALayer();

    /// <summary>Height (H) of a spatial layer, or the side of a token layer's patch grid.</summary>
    public int Height => Shape.Length == 4 ? (int)Shape[2] : Tokens is { } t ? t.GridSide(Shape) : throw NotALayer();

    /// <summary>Width (W) of a spatial layer, or the side of a token layer's patch grid.</summary>
    public int Width => Shape.Length == 4 ? (int)Shape[3] : Tokens is { } t ? t.GridSide(Shape) : throw NotALayer();

    /// <summary>All tokens (T) of a token layer, the leading class and register tokens included.</summary>
    public int TokenCount => Tokens is { } t ? (int)(t.ChannelsFirst ? Shape[2] : Shape[1]) : throw NotALayer();

    /// <summary>
    /// The offset of element (image <paramref name="image"/>, channel <paramref name="channel"/>, token
    /// <paramref name="token"/>) in a token layer's output (T counted with the leading tokens).
    /// </summary>
    /// <param name="image">The image in the batch.</param>
    /// <param name="channel">The channel.</param>
    /// <param name="token">The token index.</param>
    public int TokenOffset(int image, int channel, int token)
    {
        int t = TokenCount, c = Channels;
        return Tokens!.ChannelsFirst ? (image * c + channel) * t + token : (image * t + token) * c + channel;
    }

    /// <summary>The shape without the batch dimension, e.g. <c>[512, 14, 14]</c>, or <c>[65, 128] tokens 1+8x8</c>.</summary>
    public string ShapeText => "[" + string.Join(", ", Shape.Skip(1)) + "]"
        + (Tokens is { } t ? $" tokens {(t.PrefixTokens > 0 ? $"{t.PrefixTokens}+" : "")}{Height}x{Width}" : "");

    /// <inheritdoc/>
    public override string ToString() => $"{Name}{(FriendlyName is null ? "" : $" ({FriendlyName})")} {OpType} {ShapeText}";

    private InvalidOperationException NotALayer() =>
        new($"Tensor '{Name}' has shape [{string.Join(", ", Shape)}]; it is neither a spatial layer [N, C, H, W] nor a token layer [N, T, C].");
}
