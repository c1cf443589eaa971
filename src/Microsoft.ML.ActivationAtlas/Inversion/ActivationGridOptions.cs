using Microsoft.ML.ActivationAtlas.Building;
using Microsoft.ML.ActivationAtlas.Extraction;
using Microsoft.ML.ActivationAtlas.Onnx;

namespace Microsoft.ML.ActivationAtlas.Inversion;

/// <summary>
/// Settings of the activation grid of one image file (<c>mlContext.Transforms.ActivationGrid(imagePath, options)</c>,
/// <see cref="BuiltAtlas.ActivationGrid(string, ActivationGridOptions?, IProgress{AtlasBuildProgress}?, CancellationToken)"/>).
/// Defaults are in <see cref="Defaults"/> and documented on each member.
/// </summary>
public sealed class ActivationGridOptions
{
    /// <summary>The default settings.</summary>
    public static class Defaults
    {
        /// <summary>Optimisation steps per icon: the feature inversion's default, <see cref="FeatureInversionEstimator.Options.Defaults.Steps"/>.</summary>
        public const int IconSteps = FeatureInversionEstimator.Options.Defaults.Steps;

        /// <summary>Icon side in pixels: the feature inversion's default, <see cref="FeatureInversionEstimator.Options.Defaults.Size"/>.</summary>
        public const int IconSize = FeatureInversionEstimator.Options.Defaults.Size;

        /// <summary>Classes shown per position and given an attribution heat map: 3.</summary>
        public const int TopClasses = 3;
    }

    /// <summary>
    /// The network, e.g. <see cref="PretrainedModels.ResNet18"/>; required without <see cref="Atlas"/>. With an atlas,
    /// null takes the atlas's network, and another network is refused.
    /// </summary>
    public ActivationModel? Model { get; set; }

    /// <summary>
    /// The layer (tensor or friendly name) with spatial positions, e.g. <c>ReLU393_Output_0</c>; required without
    /// <see cref="Atlas"/>. With an atlas, empty takes the atlas's layer, and another layer is refused.
    /// </summary>
    public string Layer { get; set; } = "";

    /// <summary>
    /// How a vision transformer's token layers are laid out (positions are then the patch tokens); without an atlas
    /// only. Default null: <see cref="TokenLayout.Default"/>; with an atlas, the layout it was built with.
    /// </summary>
    public TokenLayout? Tokens { get; set; }

    /// <summary>
    /// An atlas to place every position on (through its fitted layout and grid) and whose class head gives the class
    /// values; null for none. Default null.
    /// </summary>
    public BuiltAtlas? Atlas { get; set; }

    /// <summary>
    /// A classifier on the same network (e.g. one built with <c>ClassifierHead.Attach</c>) whose logits give each
    /// position's class values (attribution, h . d(logit_k)/d(h)); null uses the atlas's trained head where it has one.
    /// Default null.
    /// </summary>
    public ActivationModel? HeadModel { get; set; }

    /// <summary>Class names of <see cref="HeadModel"/>; null reads them from the model (else <c>class_i</c>). Default null.</summary>
    public string[]? ClassNames { get; set; }

    /// <summary>Optimisation steps per icon. Default <see cref="Defaults.IconSteps"/>.</summary>
    public int IconSteps { get; set; } = Defaults.IconSteps;

    /// <summary>Icon side in pixels. Default <see cref="Defaults.IconSize"/>.</summary>
    public int IconSize { get; set; } = Defaults.IconSize;

    /// <summary>Classes listed per position and given a heat map. Default <see cref="Defaults.TopClasses"/>.</summary>
    public int TopClasses { get; set; } = Defaults.TopClasses;

    /// <summary>Seed of the icons' optimisation. Default 0, as the feature inversion's.</summary>
    public int Seed { get; set; }

    /// <summary>Where ONNX Runtime runs (CPU by default; CUDA with fallback). Default null: the CPU.</summary>
    public OnnxSessionOptions? Session { get; set; }

    internal void Validate()
    {
        if (IconSteps < 1)
            throw new ArgumentOutOfRangeException(nameof(IconSteps), IconSteps, "The icons need at least 1 optimisation step.");
        if (IconSize < 8)
            throw new ArgumentOutOfRangeException(nameof(IconSize), IconSize, "The icon size must be at least 8 pixels.");
        if (TopClasses < 1)
            throw new ArgumentOutOfRangeException(nameof(TopClasses), TopClasses, "At least one top class is shown.");
        if (Atlas is null && (Model is null || string.IsNullOrEmpty(Layer)))
            throw new ArgumentException("Give the network and its layer (Model and Layer), or an atlas (Atlas).");
    }
}
