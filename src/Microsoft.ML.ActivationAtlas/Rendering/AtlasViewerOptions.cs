using Microsoft.ML.ActivationAtlas.Histogram;

namespace Microsoft.ML.ActivationAtlas.Rendering;

/// <summary>Settings of the interactive HTML viewer.</summary>
public sealed class AtlasViewerOptions
{
    /// <summary>Page title. Default "Activation atlas".</summary>
    public string Title { get; set; } = "Activation atlas";

    /// <summary>The model, named on the page. Default "unknown model".</summary>
    public string ModelName { get; set; } = "unknown model";

    /// <summary>The layer, named on the page. Default "unknown layer".</summary>
    public string LayerName { get; set; } = "unknown layer";

    /// <summary>What the cells' per-class values are, shown in the viewer's table and per-class view. Default "Attribution".</summary>
    public string ClassValueName { get; set; } = "Attribution";

    /// <summary>Icon side in pixels in the viewer's sprite sheets. Default 64.</summary>
    public int IconPixels { get; set; } = 64;

    /// <summary>
    /// The image file of a row of the aggregated data, for the example images shown per cell; null (the default) for
    /// no example images.
    /// </summary>
    public Func<int, string>? ImagePathOfRow { get; set; }

    /// <summary>Largest side in pixels of the example image previews (smaller images are kept as they are). Default 96.</summary>
    public int ExamplePixels { get; set; } = 96;

    /// <summary>
    /// Draw the top class's name on strong cells (the rule of <see cref="AtlasLabels"/>, with an 11-pixel font on the
    /// cells as they are on screen); a check box turns them off. Default true; it has an effect only when the atlas
    /// has class values.
    /// </summary>
    public bool Labels { get; set; } = true;

    /// <summary>The labelling rule's settings. Default <see cref="AtlasLabelOptions"/>'s defaults.</summary>
    public AtlasLabelOptions LabelOptions { get; set; } = new();

    /// <summary>Axis captions shown beside the atlas (class comparisons); null (the default) for none.</summary>
    public AtlasAxes? Axes { get; set; }

    /// <summary>
    /// A sentence on the icons shown under the title and in <c>atlas.json</c> (e.g. that the icon time budget ran out and
    /// which cells show example stand-ins); null (the default) for none.
    /// </summary>
    public string? IconNote { get; set; }

    /// <summary>The overlay shown when the viewer opens (an index into <see cref="Overlays"/>); null (the default) for none.</summary>
    public int? InitialOverlay { get; set; }

    /// <summary>Heat-map overlays the viewer can switch on (concept histograms and their differences).</summary>
    public IList<ViewerOverlay> Overlays { get; } = new List<ViewerOverlay>();
}

/// <summary>How the viewer draws an overlay's values.</summary>
public enum ViewerOverlayStyle
{
    /// <summary>A translucent heat map over the icons: red for positive values, blue for negative ones.</summary>
    Heat,

    /// <summary>Each icon's opacity by the square root of its value over the largest (a concept histogram's shares); zero cells faint.</summary>
    Opacity,

    /// <summary>
    /// Cells with a non-zero value (significant log2 ratios of a comparison) in full with a red (positive) or blue
    /// (negative) frame; the others faded.
    /// </summary>
    Significance,
}

/// <summary>A per-cell value overlay of the viewer, one row-major array per grid size.</summary>
public sealed class ViewerOverlay
{
    /// <summary>Creates an overlay from per-grid values.</summary>
    /// <param name="name">Name shown in the viewer.</param>
    /// <param name="values">Per grid size, row-major values (<c>size * size</c> of them).</param>
    /// <param name="style">How the values are drawn. Default <see cref="ViewerOverlayStyle.Heat"/>.</param>
    public ViewerOverlay(string name, IReadOnlyDictionary<int, float[]> values, ViewerOverlayStyle style = ViewerOverlayStyle.Heat)
    {
        Name = name;
        Values = values;
        Style = style;
    }

    /// <summary>How the values are drawn.</summary>
    public ViewerOverlayStyle Style { get; }

    /// <summary>What the shares of an <see cref="ViewerOverlayStyle.Opacity"/> overlay count, as the viewer says “12% of the <c>images</c>”. Default <c>images</c>.</summary>
    public string Unit { get; init; } = "images";

    /// <summary>The shares of a concept histogram (count over total), drawn as icon opacity.</summary>
    /// <param name="name">Name shown in the viewer.</param>
    /// <param name="histogram">The histogram.</param>
    public static ViewerOverlay FromShares(string name, ConceptHistogram histogram)
        => new(name, histogram.Levels.Sizes.ToDictionary(s => s, s => histogram.Fractions(s)), ViewerOverlayStyle.Opacity);

    /// <summary>
    /// The significant log2 ratios of the shares of <paramref name="a"/> over <paramref name="b"/> on every grid
    /// (<see cref="HistogramComparison"/>; zero where not significant), drawn as framed cells.
    /// </summary>
    /// <param name="name">Name shown in the viewer.</param>
    /// <param name="a">The first dataset's histogram.</param>
    /// <param name="b">The second dataset's histogram.</param>
    /// <param name="options">The comparison's settings; null for the defaults.</param>
    public static ViewerOverlay FromComparison(string name, ConceptHistogram a, ConceptHistogram b, HistogramComparisonOptions? options = null)
        => new(name, a.Levels.Sizes.ToDictionary(s => s, s => HistogramComparison.Compare(a, b, s, options).SignificantLog2Ratios()), ViewerOverlayStyle.Significance);

    /// <summary>Name shown in the viewer.</summary>
    public string Name { get; }

    /// <summary>Per grid size, row-major values.</summary>
    public IReadOnlyDictionary<int, float[]> Values { get; }

    /// <summary>The counts of a concept histogram.</summary>
    /// <param name="name">Name shown in the viewer.</param>
    /// <param name="histogram">The histogram.</param>
    public static ViewerOverlay FromCounts(string name, ConceptHistogram histogram)
        => new(name, histogram.Levels.Sizes.ToDictionary(s => s, s => histogram.Counts(s).ToArray().Select(c => (float)c).ToArray()));

    /// <summary>The per-cell difference of the fractions of two histograms (<paramref name="a"/> minus <paramref name="b"/>).</summary>
    /// <param name="name">Name shown in the viewer.</param>
    /// <param name="a">First histogram.</param>
    /// <param name="b">Second histogram.</param>
    public static ViewerOverlay FromDifference(string name, ConceptHistogram a, ConceptHistogram b)
        => new(name, a.Levels.Sizes.ToDictionary(s => s, s => ConceptHistogram.Difference(a, b, s)));
}
