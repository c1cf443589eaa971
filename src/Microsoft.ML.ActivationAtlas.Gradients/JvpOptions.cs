namespace Microsoft.ML.ActivationAtlas.Gradients;

/// <summary>What a forward-mode (Jacobian-vector product, "tangent") graph computes, and the names it adds.</summary>
public sealed class JvpOptions
{
    /// <summary>The tensor the tangent is applied at (a hidden tensor or a graph input). Required.</summary>
    public string At { get; set; } = "";

    /// <summary>
    /// The tensors whose directional derivatives the graph returns. Default: empty, the model's graph outputs.
    /// </summary>
    public IList<string> Outputs { get; set; } = new List<string>();

    /// <summary>
    /// Make <see cref="At"/> an input of the new graph instead of computing it from the model's inputs.
    /// Default: false.
    /// </summary>
    public bool CutAtTangentPoint { get; set; }

    /// <summary>Name of the added tangent input, shaped like <see cref="At"/> (one tangent per example row). Default: <c>jvp_tangent</c>.</summary>
    public string TangentName { get; set; } = "jvp_tangent";

    /// <summary>
    /// Suffix of the added outputs: the directional derivative of output <c>o</c> is named <c>o + TangentSuffix</c>.
    /// Default: <c>_tangent</c>.
    /// </summary>
    public string TangentSuffix { get; set; } = "_tangent";

    /// <summary>
    /// The article's max-pool relaxation in forward mode: the tangent of a max pool is the average of the input
    /// tangent over each window (count_include_pad = 0) instead of the tangent at the window's maximum, so the
    /// derivative is not cut off by near-ties. The forward-mode counterpart of <see cref="VjpOptions.MaxPoolRelaxation"/>:
    /// with both set, forward and reverse mode agree. Default: false.
    /// </summary>
    public bool MaxPoolRelaxation { get; set; }

    /// <summary>
    /// Reference precision: compute in float64 inside the graph (inputs and outputs stay float32), with convolutions
    /// rewritten as im2col MatMuls (ONNX Runtime's CPU provider has no float64 Conv). Much slower; meant for checks
    /// against float64 references on networks whose max-pool windows and ReLU inputs hold near-ties. Supports
    /// group-1 2-D convolutions and the operators with float64 kernels. Default: false.
    /// </summary>
    public bool DoublePrecision { get; set; }

    /// <summary>Set by graphs that edit the result further and convert to float64 themselves.</summary>
    internal bool DeferDoubleConversion { get; set; }

    /// <summary>
    /// Folds inference batch normalizations into the convolutions that feed them before differentiating (as ONNX
    /// Runtime folds the forward pass), so the derivative needs no per-channel scale of its own. On by default; off for
    /// double precision and for tests comparing against the unfolded graph.
    /// </summary>
    internal bool FoldBatchNormalization { get; set; } = true;

    /// <summary>
    /// Applies the derivative mask of a ReLU that feeds only a max-pool to the pooled tensor (a quarter of the elements
    /// for ResNet18's stem) instead of the ReLU's output: exact, since the pool passes each window's derivative to the
    /// element holding its maximum, which is positive exactly where the pooled value is. On by default; off for tests
    /// comparing against the rules as written. Not used with ReLU redirection or max-pool relaxation.
    /// </summary>
    internal bool ReluMaskAtMaxPool { get; set; } = true;
}
