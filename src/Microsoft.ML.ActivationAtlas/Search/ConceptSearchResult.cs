namespace Microsoft.ML.ActivationAtlas.Search;

/// <summary>A rectangle of an image file, in the file's own pixels (x to the right, y down).</summary>
/// <param name="X">The left edge.</param>
/// <param name="Y">The top edge.</param>
/// <param name="Width">The width.</param>
/// <param name="Height">The height.</param>
public readonly record struct ImageRegion(int X, int Y, int Width, int Height);

/// <summary>One image found by a concept search.</summary>
/// <param name="Rank">1 for the best match.</param>
/// <param name="Score">The cosine between the query and the image's activation at <paramref name="PositionY"/>, <paramref name="PositionX"/> (the best of all its positions), -1 to 1.</param>
/// <param name="ImagePath">The image file.</param>
/// <param name="Label">The image's label (its first-level sub-folder's name), or empty.</param>
/// <param name="PositionY">The row of the best position on the layer's grid.</param>
/// <param name="PositionX">The column of the best position on the layer's grid.</param>
/// <param name="Region">The part of the image file that position covers: its share of the network's (center-cropped) input, mapped back to the file's pixels. The position's receptive field is larger; this is the part it stands for.</param>
public sealed record ConceptMatch(int Rank, float Score, string ImagePath, string Label, int PositionY, int PositionX, ImageRegion Region);

/// <summary>What <c>BuiltAtlas.SearchImages</c> found: the best matches, best first, and how the search went.</summary>
public sealed class ConceptSearchResult
{
    internal ConceptSearchResult(ConceptQuery query, string layerName, int gridHeight, int gridWidth, IReadOnlyList<ConceptMatch> matches,
        int imagesSearched, IReadOnlyList<string> skippedImages, double seconds)
    {
        Query = query;
        LayerName = layerName;
        GridHeight = gridHeight;
        GridWidth = gridWidth;
        Matches = matches;
        ImagesSearched = imagesSearched;
        SkippedImages = skippedImages;
        Seconds = seconds;
    }

    /// <summary>The query.</summary>
    public ConceptQuery Query { get; }

    /// <summary>The layer searched.</summary>
    public string LayerName { get; }

    /// <summary>Rows of the layer's position grid.</summary>
    public int GridHeight { get; }

    /// <summary>Columns of the layer's position grid.</summary>
    public int GridWidth { get; }

    /// <summary>The best matches, best first (at most the number asked for).</summary>
    public IReadOnlyList<ConceptMatch> Matches { get; }

    /// <summary>Images run through the network.</summary>
    public int ImagesSearched { get; }

    /// <summary>Images left out as unreadable, with the reason (at most 1,000 listed).</summary>
    public IReadOnlyList<string> SkippedImages { get; }

    /// <summary>Seconds the network pass and the ranking took.</summary>
    public double Seconds { get; }

    /// <summary>Images searched per second.</summary>
    public double ImagesPerSecond => Seconds > 0 ? ImagesSearched / Seconds : 0;
}
