using Microsoft.ML.ActivationAtlas.Onnx.Protobuf;

namespace Microsoft.ML.ActivationAtlas.Gradients.Rules;

/// <summary>
/// Reverse-mode rule: given the gradients flowing into a node's outputs (null where none flows), emits the
/// gradient of each input (null for inputs that need none).
/// </summary>
internal delegate string?[] VjpRule(RuleContext ctx, NodeProto node, string?[] outputGradients);

/// <summary>
/// Forward-mode rule: given the tangents of a node's inputs (null where the input is constant with respect to
/// the differentiation point), emits the tangent of each output (null where none).
/// </summary>
internal delegate string?[] JvpRule(RuleContext ctx, NodeProto node, string?[] inputTangents);

/// <summary>What a rule may use while emitting derivative nodes.</summary>
internal sealed class RuleContext(Internal.GraphEmitter emitter, ISet<string> active, DifferentiationSettings settings)
{
    /// <summary>Emits the derivative nodes.</summary>
    public Internal.GraphEmitter G { get; } = emitter;

    /// <summary>The options that change derivative rules.</summary>
    public DifferentiationSettings Settings { get; } = settings;

    /// <summary>True when the tensor depends (differentiably) on the point of differentiation.</summary>
    public bool IsActive(string tensor) => tensor.Length > 0 && active.Contains(tensor);

    /// <summary>Builds a node-specific error for a case a rule does not cover.</summary>
    public static UnsupportedOperatorException Unsupported(NodeProto node, string detail)
        => new(node.OpType, node.Name, detail);

    /// <summary>An input of the node, or null when absent or empty.</summary>
    public static string? Input(NodeProto node, int index)
        => index < node.Input.Count && node.Input[index].Length > 0 ? node.Input[index] : null;
}

/// <summary>Rule-affecting options shared by both modes.</summary>
internal sealed record DifferentiationSettings(bool MaxPoolRelaxation, bool ReluRedirection);
