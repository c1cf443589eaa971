namespace Microsoft.ML.ActivationAtlas.Binning;

/// <summary>A class and its value in a cell (the mean attribution of the cell's rows to that class).</summary>
/// <param name="ClassIndex">Index of the class in the attribution vector.</param>
/// <param name="Name">The class name, or its index as text when no names are known.</param>
/// <param name="Value">Mean attribution of the cell's rows to the class.</param>
public readonly record struct ClassScore(int ClassIndex, string Name, float Value);

/// <summary>One kept cell of one grid level of an atlas.</summary>
public sealed class AtlasCell
{
    internal AtlasCell(int gridSize, int x, int y, int count, ReadOnlyMemory<float> meanActivation, ReadOnlyMemory<float> meanAttribution,
        IReadOnlyList<ClassScore> topClasses, IReadOnlyList<int> exampleRows)
    {
        GridSize = gridSize;
        X = x;
        Y = y;
        Count = count;
        MeanActivation = meanActivation;
        MeanAttribution = meanAttribution;
        TopClasses = topClasses;
        ExampleRows = exampleRows;
    }

    /// <summary>Cells a side of the grid this cell belongs to.</summary>
    public int GridSize { get; }

    /// <summary>Column of the cell, 0 at the lowest layout x.</summary>
    public int X { get; }

    /// <summary>Row of the cell, 0 at the lowest layout y (drawn at the top).</summary>
    public int Y { get; }

    /// <summary>Number of rows in the cell.</summary>
    public int Count { get; }

    /// <summary>Mean activation vector of the cell's rows (what an icon visualises).</summary>
    public ReadOnlyMemory<float> MeanActivation { get; }

    /// <summary>Mean attribution vector (one value per class) of the cell's rows; empty without attribution.</summary>
    public ReadOnlyMemory<float> MeanAttribution { get; }

    /// <summary>The classes with the largest mean attribution, largest first.</summary>
    public IReadOnlyList<ClassScore> TopClasses { get; }

    /// <summary>Indices (0-based positions in the aggregated data) of the member rows nearest the mean activation, nearest first.</summary>
    public IReadOnlyList<int> ExampleRows { get; }
}

/// <summary>One grid level of an atlas: its kept cells, row-major (by y, then x).</summary>
public sealed class AtlasLevel
{
    internal AtlasLevel(int gridSize, IReadOnlyList<AtlasCell> cells, int[] counts)
    {
        GridSize = gridSize;
        Cells = cells;
        _counts = counts;
    }

    private readonly int[] _counts;

    /// <summary>Cells a side.</summary>
    public int GridSize { get; }

    /// <summary>Cells whose count reached the minimum.</summary>
    public IReadOnlyList<AtlasCell> Cells { get; }

    /// <summary>Row counts of every cell (kept or not), row-major: <c>Counts[y * GridSize + x]</c>.</summary>
    public ReadOnlySpan<int> Counts => _counts;

    /// <summary>The kept cell at (x, y), or null.</summary>
    public AtlasCell? Find(int x, int y)
    {
        int lo = 0, hi = Cells.Count - 1;
        while (lo <= hi)
        {
            int mid = (lo + hi) >>> 1;
            var c = Cells[mid];
            int cmp = c.Y != y ? c.Y.CompareTo(y) : c.X.CompareTo(x);
            if (cmp == 0)
                return c;
            if (cmp < 0)
                lo = mid + 1;
            else
                hi = mid - 1;
        }
        return null;
    }
}
