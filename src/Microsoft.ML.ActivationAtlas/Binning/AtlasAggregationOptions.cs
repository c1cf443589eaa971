namespace Microsoft.ML.ActivationAtlas.Binning;

/// <summary>Settings of <c>mlContext.Data.AggregateAtlas(...)</c>.</summary>
public sealed class AtlasAggregationOptions
{
    /// <summary>The cell column written by <c>BinToGrid</c> (one Int32 per grid size). Default <c>GridCell</c>.</summary>
    public string CellColumnName { get; set; } = AtlasColumnNames.GridCell;

    /// <summary>The activation column (vector of Single) whose per-cell mean the icons visualise. Default <c>Activation</c>.</summary>
    public string ActivationColumnName { get; set; } = AtlasColumnNames.Activation;

    /// <summary>
    /// Optional attribution column (vector of Single, one value per class); its per-cell mean gives the top classes.
    /// Null (the default) for none.
    /// </summary>
    public string? AttributionColumnName { get; set; }

    /// <summary>Grid sizes of the cell column; null (the default) reads them from the column's <c>GridSizes</c> annotation.</summary>
    public int[]? GridSizes { get; set; }

    /// <summary>Cells with fewer rows are left out. Default 1 (every non-empty cell is kept).</summary>
    public int MinimumCount { get; set; } = 1;

    /// <summary>Number of top classes per cell. Default 5.</summary>
    public int TopClasses { get; set; } = 5;

    /// <summary>Number of example rows (nearest the mean activation) per cell. Default 4.</summary>
    public int Examples { get; set; } = 4;

    /// <summary>Class names; null (the default) reads the attribution column's <c>SlotNames</c> annotation, if any.</summary>
    public IReadOnlyList<string>? ClassNames { get; set; }
}
