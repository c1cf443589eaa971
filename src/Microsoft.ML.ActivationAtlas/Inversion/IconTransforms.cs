using Microsoft.ML.ActivationAtlas.Inversion.Transforms;

namespace Microsoft.ML.ActivationAtlas.Inversion;

/// <summary>The transformation-robustness sets of the ML.NET stage.</summary>
public enum IconTransforms
{
    /// <summary>The activation atlas settings (<see cref="RobustnessTransforms.Atlas"/>), sized for icons of ~80 px.</summary>
    Atlas,

    /// <summary>lucid's <c>standard_transforms</c> (<see cref="RobustnessTransforms.LucidStandard"/>), gentler: the default, faithful icons in fewer steps.</summary>
    LucidStandard,

    /// <summary>None.</summary>
    None,

    /// <summary>
    /// Shifts by whole patches of a vision transformer's token layer, up to one patch each way
    /// (<see cref="RobustnessTransforms.PatchAligned"/>; the patch in icon pixels is the icon size over the patch grid's
    /// width). On a convolutional layer the "patch" is the layer's stride.
    /// </summary>
    PatchAligned,

    /// <summary>
    /// <see cref="LucidStandard"/> on a convolutional layer, <see cref="PatchAligned"/> on a token layer (the default):
    /// on the vit_tiny fixture lucid's transforms left the median fidelity at 0.93, below untrained icons' 0.96, and
    /// whole-patch shifts reached 0.98 to 0.99, the best of the settings that need no images (the <c>icon-transforms</c>
    /// benchmark; MACO with whole-patch shifts reached 0.99).
    /// </summary>
    Auto,
}

internal static class IconTransformLists
{
    // The list for icons of `size` px of a layer `gridWidth` positions wide (null: not known yet, only validating);
    // null for Auto, which the renderer resolves from the layer (RobustnessTransforms.For).
    public static IReadOnlyList<ImageTransform>? For(IconTransforms kind, int size, int? gridWidth) => kind switch
    {
        IconTransforms.Atlas => RobustnessTransforms.Atlas(size),
        IconTransforms.LucidStandard => RobustnessTransforms.LucidStandard(size),
        IconTransforms.None => RobustnessTransforms.None,
        IconTransforms.PatchAligned => RobustnessTransforms.PatchAligned(RobustnessTransforms.PatchPixels(size, gridWidth ?? 1)),
        IconTransforms.Auto => null,
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "Unknown transform set."),
    };
}
