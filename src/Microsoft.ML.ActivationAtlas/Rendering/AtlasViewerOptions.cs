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

    /// <summary>Heat-map overlays the viewer can switch on (concept histograms and their differences).</summary>
    public IList<ViewerOverlay> Overlays { get; } = new List<ViewerOverlay>();
}

/// <summary>A per-cell value overlay of the viewer, one row-major array per grid size.</summary>
public sealed class ViewerOverlay
{
    /// <summary>Creates an overlay from per-grid values.</summary>
    /// <param name="name">Name shown in the viewer.</param>
    /// <param name="values">Per grid size, row-major values (<c>size * size</c> of them).</param>
    public ViewerOverlay(string name, IReadOnlyDictionary<int, float[]> values)
    {
        Name = name;
        Values = values;
    }

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
