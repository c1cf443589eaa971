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
    /// <summary>Whether this is a 4-D float tensor [N, C, H, W], i.e. a layer activations can be extracted from.</summary>
    public bool IsSelectable => ElementType == TensorElementType.Float && Shape.Length == 4;

    /// <summary>Channels (C) of a 4-D tensor.</summary>
    public int Channels => Shape.Length == 4 ? (int)Shape[1] : throw NotFourD();

    /// <summary>Height (H) of a 4-D tensor.</summary>
    public int Height => Shape.Length == 4 ? (int)Shape[2] : throw NotFourD();

    /// <summary>Width (W) of a 4-D tensor.</summary>
    public int Width => Shape.Length == 4 ? (int)Shape[3] : throw NotFourD();

    /// <summary>The shape without the batch dimension, e.g. <c>[512, 14, 14]</c>.</summary>
    public string ShapeText => "[" + string.Join(", ", Shape.Skip(1)) + "]";

    /// <inheritdoc/>
    public override string ToString() => $"{Name}{(FriendlyName is null ? "" : $" ({FriendlyName})")} {OpType} {ShapeText}";

    private InvalidOperationException NotFourD() =>
        new($"Tensor '{Name}' has shape [{string.Join(", ", Shape)}]; it is not a 4-D [N, C, H, W] layer.");
}
