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
}

internal static class IconTransformLists
{
    public static IReadOnlyList<ImageTransform> For(IconTransforms kind, int size) => kind switch
    {
        IconTransforms.Atlas => RobustnessTransforms.Atlas(size),
        IconTransforms.LucidStandard => RobustnessTransforms.LucidStandard(size),
        IconTransforms.None => RobustnessTransforms.None,
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "Unknown transform set."),
    };
}
