namespace Microsoft.ML.ActivationAtlas.Inversion;

/// <summary>Where <see cref="IconRenderer"/> computes each optimisation step's gradient (see <see cref="IconRenderOptions.StepPath"/>).</summary>
public enum IconStepPath
{
    /// <summary>
    /// <see cref="Graph"/> when the model's sessions run on CUDA and the settings allow it, else <see cref="Host"/>
    /// (the default: on the CPU the two cost about the same, and the host path serves every setting).
    /// </summary>
    Auto,

    /// <summary>
    /// The image side in C#: parameterisation, transforms and their adjoints on the host, the network's gradient in
    /// ONNX Runtime. Serves every basis, transform list and objective.
    /// </summary>
    Host,

    /// <summary>
    /// The whole step in one ONNX graph run by the model's session: Fourier spectrum to image, lucid-shaped
    /// transformation robustness (pad, jitters, random scale, random rotation, jitter, crop or pad, as
    /// <see cref="Transforms.RobustnessTransforms.LucidStandard"/> and <see cref="Transforms.RobustnessTransforms.Atlas"/>),
    /// network, built-in objective and the gradient with respect to the spectrum; only the spectrum, a few numbers per
    /// icon and the gradient cross to the host. Needs an <see cref="Network.OnnxLayerGradientModel"/>, the Fourier basis,
    /// such a transform list, the built-in objective (no whitening or second-moment whitening) at one position and
    /// <see cref="IconRenderOptions.ObjectiveInGraph"/>; otherwise the renderer refuses it with the reason.
    /// </summary>
    Graph,
}
