using Microsoft.ML.Data;

namespace Microsoft.ML.ActivationAtlas.Inversion;

/// <summary>One rendered icon as an ML.NET image, with its fidelity.</summary>
public sealed class FeatureIcon
{
    internal FeatureIcon(RenderedIcon icon)
    {
        Icon = icon;
        Image = IconImages.ToMLImage(icon);
    }

    /// <summary>The icon (RGBA).</summary>
    public MLImage Image { get; }

    /// <summary>Cosine between the icon's activation (untransformed) and the direction.</summary>
    public double Fidelity => Icon.Fidelity;

    /// <summary>The icon's planar pixels and scores.</summary>
    public RenderedIcon Icon { get; }
}
