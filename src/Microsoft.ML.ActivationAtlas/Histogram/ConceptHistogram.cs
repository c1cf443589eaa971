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

    private int LevelIndex(int gridSize)
    {
        for (int i = 0; i < Levels.Count; i++)
            if (Levels.Sizes[i] == gridSize)
                return i;
        throw new ArgumentOutOfRangeException(nameof(gridSize), $"The histogram has no {gridSize}x{gridSize} grid; its grids are {string.Join(", ", Levels.Sizes)}.");
    }
}
