using Microsoft.ML.ActivationAtlas.Binning;

namespace Microsoft.ML.ActivationAtlas.Histogram;

/// <summary>
/// How many rows of a dataset land in each cell of a fitted atlas's grids: the concept histogram. Compare two with
/// <see cref="Difference"/> to see where an unknown dataset differs from a reference one.
/// </summary>
public sealed class ConceptHistogram
{
    private readonly int[][] _counts;

    internal ConceptHistogram(GridLevels levels, int[][] counts, int total)
    {
        Levels = levels;
        _counts = counts;
        Total = total;
    }

    /// <summary>The grids.</summary>
    public GridLevels Levels { get; }

    /// <summary>Number of rows counted.</summary>
    public int Total { get; }

    /// <summary>Counts of the grid with <paramref name="gridSize"/> cells a side, row-major: <c>[y * gridSize + x]</c>.</summary>
    public ReadOnlySpan<int> Counts(int gridSize) => _counts[LevelIndex(gridSize)];

    /// <summary>Count of one cell.</summary>
    public int Count(int gridSize, int x, int y) => _counts[LevelIndex(gridSize)][y * gridSize + x];

    /// <summary>The fraction of all rows in each cell (counts divided by <see cref="Total"/>), row-major.</summary>
    public float[] Fractions(int gridSize)
    {
        var counts = _counts[LevelIndex(gridSize)];
        var result = new float[counts.Length];
        if (Total > 0)
            for (int i = 0; i < counts.Length; i++)
                result[i] = counts[i] / (float)Total;
        return result;
    }

    /// <summary>
    /// Per-cell difference <c>fraction(a) - fraction(b)</c> of two histograms on the same grids (fractions, so datasets
    /// of different sizes compare), row-major.
    /// </summary>
    public static float[] Difference(ConceptHistogram a, ConceptHistogram b, int gridSize)
    {
        ArgumentNullException.ThrowIfNull(a);
        ArgumentNullException.ThrowIfNull(b);
        if (!a.Levels.Sizes.SequenceEqual(b.Levels.Sizes))
            throw new ArgumentException($"The histograms are on different grids ({string.Join(",", a.Levels.Sizes)} vs {string.Join(",", b.Levels.Sizes)}).", nameof(b));
        var fa = a.Fractions(gridSize);
        var fb = b.Fractions(gridSize);
        System.Numerics.Tensors.TensorPrimitives.Subtract(fa, fb, fa);
        return fa;
    }

    /// <summary>
    /// A histogram from counts of its finest grid (row-major, <c>finest * finest</c> of them); coarser grids sum their
    /// children. Use it for counts kept elsewhere (a saved histogram, counts from another tool).
    /// </summary>
    /// <param name="gridSizes">The nested grid sizes, coarsest first (each divides the next).</param>
    /// <param name="finestCounts">Row-major counts of the finest grid.</param>
    public static ConceptHistogram FromCounts(IEnumerable<int> gridSizes, ReadOnlySpan<int> finestCounts)
    {
        var levels = new GridLevels(gridSizes);
        if (finestCounts.Length != levels.Finest * levels.Finest)
            throw new ArgumentException($"The finest grid is {levels.Finest}x{levels.Finest}: {levels.Finest * levels.Finest} counts are needed, not {finestCounts.Length}.", nameof(finestCounts));
        long total = 0;
        foreach (int c in finestCounts)
        {
            if (c < 0)
                throw new ArgumentException("Counts cannot be negative.", nameof(finestCounts));
            total += c;
        }
        if (total > int.MaxValue)
            throw new ArgumentException($"The counts add up to {total}, more than a histogram holds.", nameof(finestCounts));
        return new ConceptHistogram(levels, LevelsFromFinest(levels, finestCounts.ToArray()), (int)total);
    }

    /// <summary>The histogram of the rows an atlas was built from (its own data), from the counts of its grids.</summary>
    /// <param name="atlas">The aggregated atlas.</param>
    public static ConceptHistogram FromAtlas(GridAtlas atlas)
    {
        ArgumentNullException.ThrowIfNull(atlas);
        var finest = atlas.Levels[^1];
        return FromCounts(atlas.Levels.Select(l => l.GridSize), finest.Counts);
    }

    /// <summary>
    /// Adds histograms on the same grids, such as the parts of a folder counted separately (<c>--shard k/n</c>): the
    /// sum equals the histogram of all the rows at once.
    /// </summary>
    /// <param name="parts">The histograms to add; at least one.</param>
    public static ConceptHistogram Merge(IReadOnlyList<ConceptHistogram> parts)
    {
        ArgumentNullException.ThrowIfNull(parts);
        if (parts.Count == 0)
            throw new ArgumentException("Give at least one histogram to merge.", nameof(parts));
        var sizes = parts[0].Levels.Sizes;
        var finest = new long[parts[0].Levels.Finest * parts[0].Levels.Finest];
        for (int p = 0; p < parts.Count; p++)
        {
            if (!parts[p].Levels.Sizes.SequenceEqual(sizes))
                throw new ArgumentException($"Histogram {p} is on the grids {string.Join(",", parts[p].Levels.Sizes)}, not {string.Join(",", sizes)}.", nameof(parts));
            var counts = parts[p]._counts[^1];
            for (int i = 0; i < finest.Length; i++)
                finest[i] += counts[i];
        }
        if (finest.Sum() > int.MaxValue)
            throw new ArgumentException("The merged counts exceed what a histogram holds.", nameof(parts));
        return FromCounts(sizes, finest.Select(c => (int)c).ToArray());
    }

    /// <summary>
    /// Writes the histogram as JSON (<c>{"grids": [...], "total": n, "finestCounts": [...]}</c>), to a temporary name
    /// renamed when complete. <see cref="Load"/> reads it back.
    /// </summary>
    /// <param name="path">The JSON file.</param>
    public void Save(string path)
    {
        var document = new Document { Grids = Levels.Sizes.ToArray(), Total = Total, FinestCounts = _counts[^1] };
        Rendering.AtomicOutput.WriteFile(path, s => System.Text.Json.JsonSerializer.Serialize(s, document, s_json));
    }

    /// <summary>Reads a histogram written by <see cref="Save"/>, with an error naming the file when it is not one.</summary>
    /// <param name="path">The JSON file.</param>
    public static ConceptHistogram Load(string path)
    {
        if (!File.Exists(path))
            throw new FileNotFoundException($"The histogram file '{path}' does not exist.", path);
        Document? document;
        try
        {
            document = System.Text.Json.JsonSerializer.Deserialize<Document>(File.ReadAllText(path), s_json);
        }
        catch (System.Text.Json.JsonException e)
        {
            throw new InvalidDataException($"'{path}' is not a histogram file: {e.Message}", e);
        }
        if (document?.Grids is not { Length: > 0 } grids || document.FinestCounts is not { } counts)
            throw new InvalidDataException($"'{path}' is not a histogram file (no grids or finestCounts).");
        ConceptHistogram histogram;
        try
        {
            histogram = FromCounts(grids, counts);
        }
        catch (ArgumentException e)
        {
            throw new InvalidDataException($"'{path}': {e.Message}", e);
        }
        if (histogram.Total != document.Total)
            throw new InvalidDataException($"'{path}': its counts add up to {histogram.Total}, not its total {document.Total}.");
        return histogram;
    }

    internal static int[][] LevelsFromFinest(GridLevels levels, int[] finest)
    {
        var result = new int[levels.Count][];
        result[^1] = finest;
        for (int l = levels.Count - 2; l >= 0; l--)
            result[l] = GridBinner.SumChildren(result[l + 1], levels.Sizes[l + 1], levels.Sizes[l]);
        return result;
    }

    private static readonly System.Text.Json.JsonSerializerOptions s_json = new(System.Text.Json.JsonSerializerDefaults.Web);

    private sealed class Document
    {
        public int[]? Grids { get; set; }

        public int Total { get; set; }

        public int[]? FinestCounts { get; set; }
    }

    private int LevelIndex(int gridSize)
    {
        for (int i = 0; i < Levels.Count; i++)
            if (Levels.Sizes[i] == gridSize)
                return i;
        throw new ArgumentOutOfRangeException(nameof(gridSize), $"The histogram has no {gridSize}x{gridSize} grid; its grids are {string.Join(", ", Levels.Sizes)}.");
    }
}
