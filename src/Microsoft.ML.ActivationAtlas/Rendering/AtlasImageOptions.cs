namespace Microsoft.ML.ActivationAtlas.Rendering;

/// <summary>Settings of the static atlas image.</summary>
public sealed class AtlasImageOptions
{
    /// <summary>The grid drawn (cells a side); null (the default) for the coarsest grid of the atlas.</summary>
    public int? GridSize { get; set; }

    /// <summary>Pixels per cell on the canvas. Default 48.</summary>
    public int CellPixels { get; set; } = 48;

    /// <summary>Scale icons by the density of their cell (sparse cells draw smaller icons). Default false.</summary>
    public bool SizeByDensity { get; set; }

    /// <summary>
    /// Per-class view: when set, each icon's opacity follows its cell's mean attribution to this class (relative to
    /// the largest over the drawn cells); cells with no positive attribution fade out. Null (the default) for none.
    /// </summary>
    public int? ClassIndex { get; set; }

    /// <summary>
    /// Draw the top class's name on cells where it is strong and the cell is large enough (the rule of
    /// <see cref="AtlasLabels"/>; the font is a quarter of a cell, at most 20 pixels). Default true; it has an effect
    /// only when the atlas has class values, and not in the per-class view.
    /// </summary>
    public bool Labels { get; set; } = true;

    /// <summary>The labelling rule's settings. Default <see cref="AtlasLabelOptions"/>'s defaults.</summary>
    public AtlasLabelOptions LabelOptions { get; set; } = new();

    /// <summary>Axis captions drawn in a margin around the atlas (class comparisons); null (the default) for none.</summary>
    public AtlasAxes? Axes { get; set; }

    /// <summary>Background colour as <c>#rrggbb</c>. Default white.</summary>
    public string Background { get; set; } = "#ffffff";
}

/// <summary>
/// Captions of an atlas laid out along meaningful axes, such as a class comparison (x: the difference of two classes'
/// values, y: a 1-D t-SNE). Each is optional.
/// </summary>
public sealed class AtlasAxes
{
    /// <summary>What the left end of the horizontal axis means (e.g. the second class's name).</summary>
    public string? Left { get; set; }

    /// <summary>What the right end of the horizontal axis means (e.g. the first class's name).</summary>
    public string? Right { get; set; }

    /// <summary>The horizontal axis's name, centred under the atlas.</summary>
    public string? Horizontal { get; set; }

    /// <summary>The vertical axis's name, written upwards beside the atlas.</summary>
    public string? Vertical { get; set; }

    /// <summary>The axes of a class comparison: <paramref name="right"/> on the right, <paramref name="left"/> on the left, 1-D t-SNE vertically.</summary>
    /// <param name="right">The class whose larger values place a row on the right.</param>
    /// <param name="left">The class whose larger values place a row on the left.</param>
    /// <param name="valueName">What the class values are (e.g. "attribution").</param>
    public static AtlasAxes ClassComparison(string right, string left, string valueName = "attribution") => new()
    {
        Left = "more " + left,
        Right = "more " + right,
        Horizontal = $"{valueName}: {right} minus {left}",
        Vertical = "1-D t-SNE of the activations",
    };
}
