using System.Globalization;
using Microsoft.ML.ActivationAtlas.Building;
using Microsoft.ML.ActivationAtlas.Extraction;

namespace Microsoft.ML.ActivationAtlas.Search;

/// <summary>
/// A direction in a layer's activation space to search an image collection with (<see cref="BuiltAtlas.SearchImages(ConceptQuery, IReadOnlyList{string}, int, Func{string, string}?, IProgress{double}?, CancellationToken)"/>):
/// an atlas cell's mean activation, a class's direction, or a vector given by the user.
/// </summary>
public sealed class ConceptQuery
{
    private readonly float[] _direction;

    private ConceptQuery(string kind, string description, float[] direction)
    {
        Kind = kind;
        Description = description;
        _direction = direction;
    }

    /// <summary>A query as recorded (e.g. in a search shard's manifest).</summary>
    internal static ConceptQuery Restore(string kind, string description, float[] direction) => new(kind, description, direction);

    /// <summary>What the query was made from: <c>cell</c>, <c>class</c> or <c>direction</c>.</summary>
    public string Kind { get; }

    /// <summary>A readable description (e.g. <c>cell 8:3,5 (12 images, top: ship 0.92)</c>).</summary>
    public string Description { get; }

    /// <summary>The direction; its length is the layer's channel count.</summary>
    public ReadOnlyMemory<float> Direction => _direction;

    /// <summary>The mean activation of one atlas cell: images whose activation somewhere points the same way show that cell's concept.</summary>
    /// <param name="atlas">The atlas.</param>
    /// <param name="gridSize">The grid; one of <see cref="BuiltAtlas.GridSizes"/>.</param>
    /// <param name="x">The cell's column, 0 to <paramref name="gridSize"/> - 1.</param>
    /// <param name="y">The cell's row, 0 to <paramref name="gridSize"/> - 1.</param>
    /// <exception cref="ArgumentOutOfRangeException">The grid is not one of the atlas's, or the cell is outside it.</exception>
    /// <exception cref="ArgumentException">The cell is empty (no image, or fewer than the atlas's minimum count).</exception>
    public static ConceptQuery ForCell(BuiltAtlas atlas, int gridSize, int x, int y)
    {
        ArgumentNullException.ThrowIfNull(atlas);
        var cell = atlas.FindCell(gridSize, x, y);
        string top = cell.TopClasses.Count > 0 ? $", top: {cell.TopClasses[0].Name} {cell.TopClasses[0].Value:0.##}" : "";
        return new ConceptQuery("cell", $"cell {gridSize}:{x},{y} ({cell.Count} images{top})", cell.MeanActivation.ToArray());
    }

    /// <summary>
    /// A class's direction: the mean activation of the atlas's rows weighted by their (positive) value for the class,
    /// minus the mean activation of all rows. With label shares this is the class's centroid relative to the
    /// dataset's; with attributions, what the rows that support the class have beyond the average. The subtraction
    /// matters because activations after a ReLU are all non-negative, so every raw mean is close (in cosine) to every
    /// activation.
    /// </summary>
    /// <param name="atlas">The atlas.</param>
    /// <param name="className">The class (case-insensitive), one of <see cref="BuiltAtlas.ClassNames"/>.</param>
    /// <exception cref="ArgumentException">The class is unknown, or no row has a positive value for it.</exception>
    public static ConceptQuery ForClass(BuiltAtlas atlas, string className)
    {
        ArgumentNullException.ThrowIfNull(atlas);
        int k = atlas.ClassIndex(className);
        int classes = atlas.ClassNames.Count, dim = atlas.ActivationSize;
        var classMean = new double[dim];
        var mean = new double[dim];
        double weight = 0;
        for (int r = 0; r < atlas.RowCount; r++)
        {
            var row = atlas.Activations.AsSpan(r * dim, dim);
            float w = Math.Max(0f, atlas.ClassValues[r * classes + k]);
            for (int c = 0; c < dim; c++)
            {
                mean[c] += row[c];
                classMean[c] += w * row[c];
            }
            weight += w;
        }
        if (weight <= 0)
            throw new ArgumentException($"Class '{atlas.ClassNames[k]}' has no row with a positive {atlas.ClassValueName} in the atlas, so it has no direction.");
        var direction = new float[dim];
        for (int c = 0; c < dim; c++)
            direction[c] = (float)(classMean[c] / weight - mean[c] / atlas.RowCount);
        return FromDirection(direction, $"class {atlas.ClassNames[k]} ({atlas.ClassValueName}-weighted mean minus the atlas mean)", "class");
    }

    /// <summary>A direction given as numbers.</summary>
    /// <param name="direction">The direction (copied); finite, not all zero.</param>
    /// <param name="description">How to describe it.</param>
    /// <exception cref="ArgumentException">The direction is empty, all zero, or holds NaN or infinity.</exception>
    public static ConceptQuery FromDirection(float[] direction, string description = "direction") =>
        FromDirection(direction, description, "direction");

    /// <summary>
    /// A direction read from a file: a <c>.npy</c> float32 array (1-D, or one row) or a text file of numbers
    /// separated by white space or commas.
    /// </summary>
    /// <param name="path">The file.</param>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="InvalidDataException">The file cannot be read as numbers, or holds NaN, infinity or only zeros.</exception>
    public static ConceptQuery FromFile(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (!File.Exists(path))
            throw new FileNotFoundException($"The direction file '{path}' does not exist.", path);
        float[] values;
        if (string.Equals(Path.GetExtension(path), ".npy", StringComparison.OrdinalIgnoreCase))
        {
            var (data, rows, columns) = NpyFormat.Read(path);
            if (rows != 1 && columns != 1)
                throw new InvalidDataException($"The direction file '{path}' holds a {rows}x{columns} array; a direction is one vector (1-D or one row).");
            values = data;
        }
        else
        {
            var tokens = File.ReadAllText(path).Split([' ', '\t', '\r', '\n', ','], StringSplitOptions.RemoveEmptyEntries);
            values = new float[tokens.Length];
            for (int i = 0; i < tokens.Length; i++)
                if (!float.TryParse(tokens[i], NumberStyles.Float, CultureInfo.InvariantCulture, out values[i]))
                    throw new InvalidDataException($"The direction file '{path}': value {i + 1} ('{tokens[i]}') is not a number.");
        }
        try
        {
            return FromDirection(values, $"direction {Path.GetFileName(path)}", "direction");
        }
        catch (ArgumentException e)
        {
            throw new InvalidDataException($"The direction file '{path}': {e.Message}", e);
        }
    }

    /// <summary>Fails unless the direction has the layer's width.</summary>
    internal void CheckLength(int channels, string layer)
    {
        if (_direction.Length != channels)
            throw new ArgumentException($"The {Kind} ({Description}) has {_direction.Length} values; layer '{layer}' has {channels} channels.");
    }

    private static ConceptQuery FromDirection(float[] direction, string description, string kind)
    {
        ArgumentNullException.ThrowIfNull(direction);
        if (direction.Length == 0)
            throw new ArgumentException("The direction is empty.", nameof(direction));
        for (int i = 0; i < direction.Length; i++)
            if (!float.IsFinite(direction[i]))
                throw new ArgumentException($"The direction's value {i + 1} is {direction[i]}; every value must be a finite number.", nameof(direction));
        if (direction.All(v => v == 0))
            throw new ArgumentException("The direction is all zeros; it points nowhere.", nameof(direction));
        return new ConceptQuery(kind, description, direction.ToArray());
    }
}
