using Microsoft.ML.ActivationAtlas.Building;
using Microsoft.ML.ActivationAtlas.Rendering;
using Microsoft.ML.Data;

namespace Microsoft.ML.ActivationAtlas.Inversion;

/// <summary>
/// An icon for every position of one image's activation at a layer, laid out in the layer's grid (the article's
/// "looking at a single image"); from an image file also each position's class values and, with an atlas, its place
/// on the atlas. <see cref="Write"/> draws it as PNGs and an HTML page.
/// </summary>
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

    /// <summary>The image file, or null when the grid was made from an <see cref="MLImage"/>.</summary>
    public string? ImagePath { get; internal init; }

    /// <summary>The network's description (e.g. <c>resnet18</c>).</summary>
    public string ModelName { get; internal init; } = "";

    /// <summary>The layer's tensor name.</summary>
    public string LayerName { get; internal init; } = "";

    /// <summary>
    /// The part of the image file the network saw (its center crop to the network's aspect ratio), in file pixels;
    /// position (y, x) stands for its equal share of it. The whole image when the grid was made from an <see cref="MLImage"/>.
    /// </summary>
    public (int X, int Y, int Width, int Height) InputRegion { get; internal init; }

    /// <summary>The image file's size in pixels.</summary>
    public (int Width, int Height) ImageSize { get; internal init; }

    /// <summary>The names of the classes of <see cref="ClassValues"/>; empty without a class head.</summary>
    public IReadOnlyList<string> ClassNames { get; internal init; } = [];

    /// <summary>Each position's attribution to every class, h . d(logit_k)/d(h), row-major <c>[rows x columns, classes]</c>; empty without a class head.</summary>
    public float[] ClassValues { get; internal init; } = [];

    /// <summary>Where the class values come from: the atlas's trained head, or the classifier given; null without.</summary>
    public string? ClassSource { get; internal init; }

    /// <summary>
    /// The classes given a heat map: the <see cref="ActivationGridOptions.TopClasses"/> classes with the largest
    /// attribution summed over the positions, largest first (indices into <see cref="ClassNames"/>).
    /// </summary>
    public IReadOnlyList<int> TopClasses { get; internal init; } = [];

    /// <summary>The atlas the positions were placed on, or null.</summary>
    public BuiltAtlas? Atlas { get; internal init; }

    /// <summary>Each position's place in the atlas's layout, row-major <c>[rows x columns, 2]</c>; empty without an atlas.</summary>
    public float[] Layout { get; internal init; } = [];

    /// <summary>
    /// Each position's cell in every grid of the atlas, coarse to fine (<c>y * size + x</c>), row-major
    /// <c>[rows x columns, grids]</c>; empty without an atlas.
    /// </summary>
    public int[] Cells { get; internal init; } = [];

    /// <summary>The cell of position <paramref name="position"/> (row-major) in the atlas's grid of <paramref name="gridSize"/> cells a side.</summary>
    /// <param name="position">The position, <c>y * Columns + x</c>.</param>
    /// <param name="gridSize">One of the atlas's grid sizes.</param>
    public (int X, int Y) Cell(int position, int gridSize)
    {
        if (Atlas is null)
            throw new InvalidOperationException("The grid was made without an atlas; its positions have no cells.");
        Atlas.CheckGrid(gridSize);
        ArgumentOutOfRangeException.ThrowIfNegative(position);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(position, Rows * Columns);
        int level = Atlas.GridSizes.ToList().IndexOf(gridSize), cell = Cells[position * Atlas.GridSizes.Count + level];
        return (cell % gridSize, cell / gridSize);
    }

    /// <summary>
    /// Writes the grid into a new folder: <c>image.png</c> (the image file, the network's part outlined),
    /// <c>grid.png</c> (the network's input beside the icons in the layer's grid), <c>attribution.png</c> (with class
    /// values: a heat map over the grid per top class), <c>index.html</c> (hover a position for its top classes and
    /// atlas cell), <c>grid.json</c> and, with an atlas, <c>atlas/</c> (the atlas viewer with this image's cells
    /// highlighted and counted). The folder is filled under a temporary name and renamed when complete.
    /// </summary>
    /// <param name="outputFolder">The folder to create; it must not exist.</param>
    public void Write(string outputFolder)
    {
        ArgumentException.ThrowIfNullOrEmpty(outputFolder);
        AtlasFolder.EnsureFree(outputFolder);
        ActivationGridWriter.Write(this, outputFolder);
    }
}
