namespace Microsoft.ML.ActivationAtlas.Gradients;

/// <summary>What a reverse-mode (vector-Jacobian product) graph computes, and the names of what it adds.</summary>
public sealed class VjpOptions
{
    /// <summary>
    /// The tensor whose value and (seeded) gradient the graph returns: a hidden tensor or an output of the model.
    /// Required.
    /// </summary>
    public string Of { get; set; } = "";

    /// <summary>
    /// The tensor the gradient is taken with respect to. Default: null, the model's first graph input (the image).
    /// </summary>
    public string? WithRespectTo { get; set; }

    /// <summary>
    /// When <see cref="WithRespectTo"/> is a hidden tensor, make it an input of the new graph (the part of the model
    /// before it is dropped where nothing else needs it). Default: false (the graph runs from the model's inputs).
    /// </summary>
    public bool CutAtWithRespectTo { get; set; }

    /// <summary>
    /// An objective on <see cref="Of"/> written into the graph (one value per example); the gradient is then that
    /// of the objective and the graph has no seed input. Default: null (the graph takes a seed, see <see cref="SeedName"/>).
    /// </summary>
    public FeatureObjective? Objective { get; set; }

    /// <summary>Name of the added seed (cotangent) input, shaped like <see cref="Of"/>. Default: <c>vjp_seed</c>.</summary>
    public string SeedName { get; set; } = "vjp_seed";

    /// <summary>
    /// Name of the added output holding the gradient, shaped like <see cref="WithRespectTo"/>. Default: <c>vjp_gradient</c>.
    /// </summary>
    public string GradientName { get; set; } = "vjp_gradient";

    /// <summary>Name of the added output holding the objective's value per example ([N]). Default: <c>vjp_objective</c>.</summary>
    public string ObjectiveName { get; set; } = "vjp_objective";

    /// <summary>
    /// Replace the max-pool gradient by the average-pool gradient over the same windows (a continuous relaxation
    /// that spreads the gradient over the whole window). Default: false (exact gradient).
    /// </summary>
    public bool MaxPoolRelaxation { get; set; }

    /// <summary>
    /// Lucid's ReLU gradient redirection: for an example where no gradient passes a ReLU, pass it anyway except
    /// where it would push an already negative input lower (gradient-ascent convention). Used for the first steps
    /// of feature visualisation. Default: false (exact gradient).
    /// </summary>
    public bool ReluRedirection { get; set; }

    /// <summary>
    /// Reference precision: compute in float64 inside the graph (inputs and outputs stay float32), with convolutions
    /// rewritten as im2col MatMuls (ONNX Runtime's CPU provider has no float64 Conv). Much slower; meant for checks
    /// against float64 references on networks whose max-pool windows and ReLU inputs hold near-ties. Supports
    /// group-1 2-D convolutions and the operators with float64 kernels. Default: false.
    /// </summary>
    public bool DoublePrecision { get; set; }

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
