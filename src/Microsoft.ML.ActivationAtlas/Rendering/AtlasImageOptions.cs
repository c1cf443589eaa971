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

    /// <summary>Draw each cell's top class name under its icon. Default false.</summary>
    public bool Labels { get; set; }

    /// <summary>Background colour as <c>#rrggbb</c>. Default white.</summary>
    public string Background { get; set; } = "#ffffff";
}
