using Microsoft.ML.ActivationAtlas.Common;
using Microsoft.ML.Data;

namespace Microsoft.ML.ActivationAtlas.Binning;

/// <summary>
/// An aggregated atlas: for each grid level, the kept cells with their count, mean activation, mean attribution,
/// top classes and example rows. <see cref="ToDataView"/> gives it as an <see cref="IDataView"/>, one row per kept
/// cell of every level (coarse levels first).
/// </summary>
public sealed class GridAtlas
{
    internal GridAtlas(IReadOnlyList<AtlasLevel> levels, int activationSize, int classCount, IReadOnlyList<string>? classNames, int rowCount)
    {
        Levels = levels;
        ActivationSize = activationSize;
        ClassCount = classCount;
        ClassNames = classNames is not null && classNames.Count == classCount
            ? classNames
            : Enumerable.Range(0, classCount).Select(i => i.ToString(System.Globalization.CultureInfo.InvariantCulture)).ToArray();
        RowCount = rowCount;
    }

    /// <summary>Grid levels, coarse to fine.</summary>
    public IReadOnlyList<AtlasLevel> Levels { get; }

    /// <summary>Length of the activation vectors.</summary>
    public int ActivationSize { get; }

    /// <summary>Number of classes in the attribution vectors (0 without attribution).</summary>
    public int ClassCount { get; }

    /// <summary>Class names (their indices as text when none were given).</summary>
    public IReadOnlyList<string> ClassNames { get; }

    /// <summary>Number of rows aggregated.</summary>
    public int RowCount { get; }

    /// <summary>The level with <paramref name="gridSize"/> cells a side.</summary>
    public AtlasLevel Level(int gridSize) => Levels.FirstOrDefault(l => l.GridSize == gridSize)
        ?? throw new ArgumentOutOfRangeException(nameof(gridSize), $"The atlas has no {gridSize}x{gridSize} grid; its grids are {string.Join(", ", Levels.Select(l => l.GridSize))}.");

    /// <summary>Index of the class named <paramref name="name"/> (case-insensitive), with a clear error for unknown names.</summary>
    public int ClassIndex(string name)
    {
        for (int i = 0; i < ClassNames.Count; i++)
            if (string.Equals(ClassNames[i], name, StringComparison.OrdinalIgnoreCase))
                return i;
        throw new ArgumentException($"Unknown class '{name}'. Known classes: {string.Join(", ", ClassNames.Take(40))}{(ClassNames.Count > 40 ? ", ..." : "")}.", nameof(name));
    }

    /// <summary>
    /// The atlas as a data view, one row per kept cell: <c>GridSize</c>, <c>CellX</c>, <c>CellY</c>, <c>Count</c>
    /// (Int32), <c>MeanActivation</c>, <c>MeanAttribution</c> (Single vectors), <c>TopClasses</c> (Int32 vector),
    /// <c>TopClassNames</c> (text vector), <c>TopClassValues</c> (Single vector) and <c>ExampleRows</c>
    /// (Int32 vector, padded with -1 where a cell has fewer members).
    /// </summary>
    public IDataView ToDataView()
    {
        var cells = Levels.SelectMany(l => l.Cells).ToArray();
        int top = cells.Length == 0 ? 0 : cells.Max(c => c.TopClasses.Count);
        int examples = cells.Length == 0 ? 0 : cells.Max(c => c.ExampleRows.Count);
        var i32 = NumberDataViewType.Int32;
        var b = new InMemoryDataView.Builder(cells.Length)
            .Add("GridSize", i32, (int r, ref int v) => v = cells[r].GridSize)
            .Add("CellX", i32, (int r, ref int v) => v = cells[r].X)
            .Add("CellY", i32, (int r, ref int v) => v = cells[r].Y)
            .Add("Count", i32, (int r, ref int v) => v = cells[r].Count)
            .Add("MeanActivation", new VectorDataViewType(NumberDataViewType.Single, ActivationSize),
                (int r, ref VBuffer<float> v) => InMemoryDataView.Fill(ref v, cells[r].MeanActivation.Span))
            .Add("MeanAttribution", new VectorDataViewType(NumberDataViewType.Single, ClassCount),
                (int r, ref VBuffer<float> v) => InMemoryDataView.Fill(ref v, cells[r].MeanAttribution.Span))
            .Add("TopClasses", new VectorDataViewType(i32, top),
                (int r, ref VBuffer<int> v) => InMemoryDataView.Fill(ref v, Pad(cells[r].TopClasses.Select(t => t.ClassIndex), top, -1)))
            .Add("TopClassNames", new VectorDataViewType(TextDataViewType.Instance, top),
                (int r, ref VBuffer<ReadOnlyMemory<char>> v) => InMemoryDataView.Fill(ref v, Pad(cells[r].TopClasses.Select(t => t.Name.AsMemory()), top, ReadOnlyMemory<char>.Empty)))
            .Add("TopClassValues", new VectorDataViewType(NumberDataViewType.Single, top),
                (int r, ref VBuffer<float> v) => InMemoryDataView.Fill(ref v, Pad(cells[r].TopClasses.Select(t => t.Value), top, float.NaN)))
            .Add("ExampleRows", new VectorDataViewType(i32, examples),
                (int r, ref VBuffer<int> v) => InMemoryDataView.Fill(ref v, Pad(cells[r].ExampleRows, examples, -1)));
        return b.Build();
    }

    private static T[] Pad<T>(IEnumerable<T> values, int length, T fill)
    {
        var result = new T[length];
        Array.Fill(result, fill);
        int i = 0;
        foreach (var v in values.Take(length))
            result[i++] = v;
        return result;
    }
}
