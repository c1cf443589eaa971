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
internal sealed class RuleContext
{
    private readonly ISet<string> _active;

    /// <summary>
    /// The context for differentiating <paramref name="graph"/>: its static shapes, and, where
    /// <paramref name="reluMaskAtMaxPool"/> asks for it and neither ReLU redirection nor max-pool relaxation changes
    /// those rules, the ReLUs whose mask the max-pool they feed applies (none of them in <paramref name="keep"/>: the
    /// point of differentiation and the tensors differentiated).
    /// </summary>
    public RuleContext(GraphProto graph, Internal.GraphEmitter emitter, ISet<string> active, DifferentiationSettings settings,
        bool reluMaskAtMaxPool, IEnumerable<string> keep)
    {
        G = emitter;
        _active = active;
        Settings = settings;
        Shapes = Internal.StaticShapes.Infer(graph, emitter);
        ReluMaskedAtMaxPool = reluMaskAtMaxPool && !settings.ReluRedirection && !settings.MaxPoolRelaxation
            ? Internal.GraphAnalysis.ReluOutputsFeedingOnlyMaxPool(graph, keep)
            : new HashSet<string>();
    }

    /// <summary>Emits the derivative nodes.</summary>
    public Internal.GraphEmitter G { get; }

    /// <summary>The options that change derivative rules.</summary>
    public DifferentiationSettings Settings { get; }

    /// <summary>The forward tensors' shapes known before the graph runs.</summary>
    public Internal.StaticShapes Shapes { get; }

    /// <summary>
    /// Sums the gradient of an element-wise node's output (shaped like that output) back to an operand's shape; where
    /// the operand is known to have the output's shape it is the gradient itself.
    /// </summary>
    public string ReduceToOperand(string grad, NodeProto node, string operand)
        => Shapes.Same(operand, node.Output[0]) ? grad : G.ReduceToShapeOf(grad, operand);

    /// <summary>
    /// Outputs of ReLUs that feed only a max-pool: their derivative mask is applied by the max-pool's rule to the pooled
    /// tensor, and the ReLU's rule passes the derivative through.
    /// </summary>
    public IReadOnlySet<string> ReluMaskedAtMaxPool { get; }

    /// <summary>True when the tensor depends (differentiably) on the point of differentiation.</summary>
    public bool IsActive(string tensor) => tensor.Length > 0 && _active.Contains(tensor);

    /// <summary>Builds a node-specific error for a case a rule does not cover.</summary>
    public static UnsupportedOperatorException Unsupported(NodeProto node, string detail)
        => new(node.OpType, node.Name, detail);

    /// <summary>An input of the node, or null when absent or empty.</summary>
    public static string? Input(NodeProto node, int index)
        => index < node.Input.Count && node.Input[index].Length > 0 ? node.Input[index] : null;
}

/// <summary>Rule-affecting options shared by both modes.</summary>
internal sealed record DifferentiationSettings(bool MaxPoolRelaxation, bool ReluRedirection);
