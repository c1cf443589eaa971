using Microsoft.ML.Data;

namespace Microsoft.ML.ActivationAtlas.Inversion;

/// <summary>An icon for every position of one image's activation at a layer, laid out in the layer's grid.</summary>
public sealed class ActivationGrid
{
    internal ActivationGrid(MLImage image, int rows, int columns, IReadOnlyList<RenderedIcon?> icons, float[] vectors)
    {
        Image = image;
        Rows = rows;
        Columns = columns;
        Icons = icons;
        Activations = vectors;
    }

    /// <summary>The icons laid out row-major as one image (white where the activation vector is zero).</summary>
    public MLImage Image { get; }

    /// <summary>Layer rows.</summary>
    public int Rows { get; }

    /// <summary>Layer columns.</summary>
    public int Columns { get; }

    /// <summary>The icon of each position (row-major), null where the activation vector is zero.</summary>
    public IReadOnlyList<RenderedIcon?> Icons { get; }

    /// <summary>The activation vectors, <c>[rows x columns, channels]</c> row-major.</summary>
    public float[] Activations { get; }
}
