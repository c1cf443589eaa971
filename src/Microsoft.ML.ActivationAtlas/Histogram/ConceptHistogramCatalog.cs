using Microsoft.ML.ActivationAtlas.Binning;
using Microsoft.ML.ActivationAtlas.Histogram;

namespace Microsoft.ML;

/// <summary>Catalog extension for concept histograms.</summary>
public static class ConceptHistogramCatalog
{
    /// <summary>
    /// Counts how many rows of <paramref name="data"/> (already transformed by a fitted atlas pipeline, so it has the
    /// <c>BinToGrid</c> cell column) land in each cell of every grid. The rows stream through once and only the
    /// finest grid's counts are kept (memory does not grow with the number of rows); coarser grids sum their children.
    /// </summary>
    /// <param name="catalog">The data catalog.</param>
    /// <param name="data">The new dataset, transformed by the fitted pipeline.</param>
    /// <param name="cellColumnName">The cell column. Default <c>GridCell</c>.</param>
    /// <param name="cancellationToken">Cancels the pass.</param>
    /// <example>A runnable sample: <c>samples/AtlasSamples/ConceptHistogramSample.cs</c> (<c>dotnet run -c Release --project samples/AtlasSamples -- histogram</c>).</example>
    public static ConceptHistogram ConceptHistogram(this DataOperationsCatalog catalog, IDataView data, string cellColumnName = ActivationAtlas.AtlasColumnNames.GridCell, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        ArgumentNullException.ThrowIfNull(data);
        var col = BinningCatalog.CellColumn(data.Schema, cellColumnName);
        var levels = new GridLevels(BinningCatalog.GridSizesOf(col));
        var counts = new int[levels.Finest * levels.Finest];
        int total = BinningCatalog.ForEachFinestCell(data, col, levels, c => counts[c]++, cancellationToken);
        return new ConceptHistogram(levels, ActivationAtlas.Histogram.ConceptHistogram.LevelsFromFinest(levels, counts), total);
    }
}
