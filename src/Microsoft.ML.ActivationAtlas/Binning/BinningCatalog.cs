using Microsoft.ML.ActivationAtlas.Binning;
using Microsoft.ML.ActivationAtlas.Common;
using Microsoft.ML.Data;

namespace Microsoft.ML;

/// <summary>Catalog extensions for binning a 2-D layout into nested grids and aggregating an atlas.</summary>
public static class BinningCatalog
{
    /// <summary>
    /// Bins a 2-D layout column into nested grids (default 20, 40, 80, 160 cells a side). The layout is normalised as in
    /// the activation-atlas article: 1st/99th percentile per axis, 10% margin, clipped, scaled to [0, 1].
    /// </summary>
    /// <param name="catalog">The transforms catalog.</param>
    /// <param name="outputColumnName">Cell column: one Int32 per grid size, <c>y * size + x</c>.</param>
    /// <param name="inputColumnName">Layout column: a vector of two Singles.</param>
    /// <param name="gridSizes">Grid sizes; each the finest divided by a power of two. Empty for 20, 40, 80, 160.</param>
    /// <example>A runnable sample: <c>samples/AtlasSamples/AtlasPipelineSample.cs</c> (<c>dotnet run -c Release --project samples/AtlasSamples -- pipeline</c>).</example>
    public static BinToGridEstimator BinToGrid(this TransformsCatalog catalog, string outputColumnName = ActivationAtlas.AtlasColumnNames.GridCell, string inputColumnName = ActivationAtlas.AtlasColumnNames.Layout, params int[] gridSizes)
    {
        var options = new BinToGridEstimator.Options { OutputColumnName = outputColumnName, InputColumnName = inputColumnName };
        if (gridSizes is { Length: > 0 })
            options.GridSizes = gridSizes;
        return BinToGrid(catalog, options);
    }

    /// <summary>Bins a 2-D layout column into nested grids with full <paramref name="options"/>.</summary>
    /// <param name="catalog">The transforms catalog.</param>
    /// <param name="options">The settings.</param>
    /// <example>A runnable sample: <c>samples/AtlasSamples/AtlasPipelineSample.cs</c> (<c>dotnet run -c Release --project samples/AtlasSamples -- pipeline</c>).</example>
    public static BinToGridEstimator BinToGrid(this TransformsCatalog catalog, BinToGridEstimator.Options options)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        return new BinToGridEstimator(CatalogContext.Of(catalog), options);
    }

    /// <summary>
    /// Aggregates binned rows into an atlas: per kept cell of every grid level, the count, mean activation, mean
    /// attribution, top classes and the rows nearest the mean. <see cref="GridAtlas.ToDataView"/> gives the result as
    /// an <see cref="IDataView"/>.
    /// </summary>
    /// <param name="catalog">The data catalog.</param>
    /// <param name="data">Rows with the cell column of <c>BinToGrid</c> and an activation column.</param>
    /// <param name="options">The settings (default: columns GridCell and Activation, no attribution).</param>
    /// <param name="progress">Optional progress, 0 to 1.</param>
    /// <param name="cancellationToken">Cancels the aggregation.</param>
    /// <example>A runnable sample: <c>samples/AtlasSamples/AtlasPipelineSample.cs</c> (<c>dotnet run -c Release --project samples/AtlasSamples -- pipeline</c>).</example>
    public static GridAtlas AggregateAtlas(this DataOperationsCatalog catalog, IDataView data, AtlasAggregationOptions? options = null,
        IProgress<double>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        ArgumentNullException.ThrowIfNull(data);
        options ??= new AtlasAggregationOptions();
        if (options.MinimumCount < 1)
            throw new ArgumentOutOfRangeException(nameof(options), $"MinimumCount must be at least 1, not {options.MinimumCount}.");
        if (options.TopClasses < 0 || options.Examples < 0)
            throw new ArgumentOutOfRangeException(nameof(options), "TopClasses and Examples must not be negative.");

        var cellCol = CellColumn(data.Schema, options.CellColumnName);
        var levels = new GridLevels(options.GridSizes ?? GridSizesOf(cellCol));
        if (((VectorDataViewType)cellCol.Type).Size is int n && n != 0 && n != levels.Count)
            throw new ArgumentException($"Column '{options.CellColumnName}' holds {n} cells per row but {levels.Count} grid sizes were given.", nameof(options));
        var actCol = SchemaShapes.FloatVector(data.Schema, options.ActivationColumnName, "activations");
        DataViewSchema.Column? attrCol = options.AttributionColumnName is null ? null : SchemaShapes.FloatVector(data.Schema, options.AttributionColumnName, "attribution");
        var names = options.ClassNames ?? (attrCol is { } ac ? SlotNames(ac) : null);

        var codes = FinestCodes(data, cellCol, levels, cancellationToken);
        var activations = SchemaShapes.ReadFloatMatrix(data, actCol, out int rows, out int dim, cancellationToken);
        float[]? attributions = null;
        int classes = 0;
        if (attrCol is { } a)
            attributions = SchemaShapes.ReadFloatMatrix(data, a, out _, out classes, cancellationToken);
        if (rows != codes.Length)
            throw new InvalidOperationException($"The data returned {codes.Length} cells but {rows} activation rows.");
        return GridAggregator.Aggregate(codes, activations, dim, attributions, classes, levels,
            new GridAggregator.Settings(options.MinimumCount, options.TopClasses, options.Examples, names), progress, cancellationToken);
    }

    internal static DataViewSchema.Column CellColumn(DataViewSchema schema, string name)
    {
        var col = schema.GetColumnOrNull(name)
            ?? throw new ArgumentOutOfRangeException(nameof(schema), $"The input has no grid cell column '{name}' (add mlContext.Transforms.BinToGrid(...) to the pipeline).");
        if (col.Type is not VectorDataViewType { ItemType: var t } || t != NumberDataViewType.Int32)
            throw new ArgumentOutOfRangeException(nameof(schema), $"Column '{name}' must be the Int32 vector of BinToGrid, not {col.Type}.");
        return col;
    }

    internal static int[] GridSizesOf(DataViewSchema.Column cellColumn)
    {
        var annotation = cellColumn.Annotations.Schema.GetColumnOrNull(BinToGridTransformer.GridSizesAnnotation)
            ?? throw new ArgumentException($"Column '{cellColumn.Name}' does not carry its grid sizes; set GridSizes in the options.");
        VBuffer<int> sizes = default;
        cellColumn.Annotations.GetValue(BinToGridTransformer.GridSizesAnnotation, ref sizes);
        return sizes.DenseValues().ToArray();
    }

    internal static IReadOnlyList<string>? SlotNames(DataViewSchema.Column column)
    {
        if (column.Annotations.Schema.GetColumnOrNull("SlotNames") is null)
            return null;
        VBuffer<ReadOnlyMemory<char>> names = default;
        column.GetSlotNames(ref names);
        return names.DenseValues().Select(n => n.ToString()).ToArray();
    }

    /// <summary>Reads the finest cell of every row as a Z-order code.</summary>
    internal static int[] FinestCodes(IDataView data, DataViewSchema.Column cellColumn, GridLevels levels, CancellationToken cancellationToken)
    {
        var codes = new List<int>((int)Math.Min(data.GetRowCount() ?? 1024, int.MaxValue));
        int finest = levels.Finest;
        ForEachFinestCell(data, cellColumn, levels, c => codes.Add(GridLevels.Morton(c % finest, c / finest)), cancellationToken);
        return codes.ToArray();
    }

    /// <summary>
    /// Streams the rows once and passes each row's finest cell (row-major index) to <paramref name="visit"/>; returns
    /// the number of rows. Rows whose cells do not fit the grids fail with the row named.
    /// </summary>
    internal static int ForEachFinestCell(IDataView data, DataViewSchema.Column cellColumn, GridLevels levels, Action<int> visit, CancellationToken cancellationToken)
    {
        int finest = levels.Finest, rows = 0;
        VBuffer<int> cells = default;
        using var cursor = data.GetRowCursor([cellColumn]);
        var getter = cursor.GetGetter<VBuffer<int>>(cellColumn);
        while (cursor.MoveNext())
        {
            if ((rows & 1023) == 0)
                cancellationToken.ThrowIfCancellationRequested();
            getter(ref cells);
            if (cells.Length != levels.Count)
                throw new InvalidOperationException($"Column '{cellColumn.Name}' row {rows}: {cells.Length} cells, expected {levels.Count}.");
            int c = cells.GetItemOrDefault(levels.Count - 1);
            if (c < 0 || c >= finest * finest)
                throw new InvalidOperationException($"Column '{cellColumn.Name}' row {rows}: cell {c} is outside the {finest}x{finest} grid.");
            visit(c);
            rows++;
        }
        return rows;
    }
}
