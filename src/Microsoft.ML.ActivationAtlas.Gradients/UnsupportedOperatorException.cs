namespace Microsoft.ML.ActivationAtlas.Gradients;

/// <summary>
/// Thrown when a node between the differentiation point and the target has no derivative rule, or uses an
/// attribute combination the rule does not cover.
/// </summary>
public sealed class UnsupportedOperatorException : NotSupportedException
{
    /// <summary>Creates the exception for one node.</summary>
    /// <param name="opType">The ONNX operator type, e.g. <c>Resize</c>.</param>
    /// <param name="nodeName">The node's name in the graph.</param>
    /// <param name="detail">Why the node cannot be differentiated.</param>
    public UnsupportedOperatorException(string opType, string nodeName, string detail)
        : base($"Cannot differentiate node '{nodeName}' (op {opType}): {detail}")
    {
        OpType = opType;
        NodeName = nodeName;
    }

    /// <summary>The operator type of the node at fault.</summary>
    public string OpType { get; }

    /// <summary>The name of the node at fault.</summary>
    public string NodeName { get; }
}
