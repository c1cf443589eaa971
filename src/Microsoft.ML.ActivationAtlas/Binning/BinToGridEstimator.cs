using Microsoft.ML.ActivationAtlas.Common;
using Microsoft.ML.Data;

namespace Microsoft.ML.ActivationAtlas.Binning;

/// <summary>
/// Fits the normalisation of a 2-D layout column (percentile bounds per axis) and produces a
/// <see cref="BinToGridTransformer"/> that assigns every row its cell in each of several nested grids.
/// Create it with <c>mlContext.Transforms.BinToGrid(...)</c>.
/// </summary>
public sealed class BinToGridEstimator : IEstimator<BinToGridTransformer>
{
    /// <summary>Settings of <see cref="BinToGridEstimator"/>.</summary>
    public sealed class Options
    {
        /// <summary>Output column: one Int32 per grid size (coarse to fine), the cell index <c>y * size + x</c>. Default <c>GridCell</c>.</summary>
        public string OutputColumnName { get; set; } = AtlasColumnNames.GridCell;

        /// <summary>Input column: the 2-D layout, a vector of two Singles (e.g. UMAP output). Default <c>Layout</c>.</summary>
        public string InputColumnName { get; set; } = AtlasColumnNames.Layout;

        /// <summary>Optional output column with the normalised position in [0, 1]^2 (two Singles); null for none. Default <c>GridPosition</c>.</summary>
        public string? PositionColumnName { get; set; } = AtlasColumnNames.GridPosition;

        /// <summary>Grid sizes (cells a side); each must be the finest divided by a power of two. Default 20, 40, 80, 160.</summary>
        public int[] GridSizes { get; set; } = [20, 40, 80, 160];

        /// <summary>Lower percentile per axis mapped (before the margin) to the grid's edge. Default 1.</summary>
        public float LowPercentile { get; set; } = 1f;

        /// <summary>Upper percentile per axis. Default 99.</summary>
        public float HighPercentile { get; set; } = 99f;

        /// <summary>Margin added on each side, relative to the percentile range; points beyond are clipped to the edge cells. Default 0.1.</summary>
        public float Margin { get; set; } = 0.1f;

        internal void Validate()
        {
            if (string.IsNullOrWhiteSpace(OutputColumnName))
                throw new ArgumentException("OutputColumnName must be set.", nameof(OutputColumnName));
            if (string.IsNullOrWhiteSpace(InputColumnName))
                throw new ArgumentException("InputColumnName must be set.", nameof(InputColumnName));
            if (!(LowPercentile >= 0 && LowPercentile < HighPercentile && HighPercentile <= 100))
                throw new ArgumentOutOfRangeException(nameof(LowPercentile), $"Percentiles must satisfy 0 <= LowPercentile ({LowPercentile}) < HighPercentile ({HighPercentile}) <= 100.");
            if (!(Margin >= 0 && float.IsFinite(Margin)))
                throw new ArgumentOutOfRangeException(nameof(Margin), $"Margin must be a finite value >= 0, not {Margin}.");
            _ = new GridLevels(GridSizes ?? throw new ArgumentNullException(nameof(GridSizes)));
        }

        internal Options Clone() => (Options)MemberwiseClone();
    }

    private readonly MLContext _mlContext;
    private readonly Options _options;

    internal BinToGridEstimator(MLContext mlContext, Options options)
    {
        ArgumentNullException.ThrowIfNull(mlContext);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        _mlContext = mlContext;
        _options = options.Clone();
        _options.GridSizes = (int[])options.GridSizes.Clone();
    }

    /// <summary>Reads the layout column once and fits the per-axis percentile bounds.</summary>
    public BinToGridTransformer Fit(IDataView input)
    {
        ArgumentNullException.ThrowIfNull(input);
        var col = SchemaShapes.FloatVector(input.Schema, _options.InputColumnName, "2-D layout", 2);
        var xy = SchemaShapes.ReadFloatMatrix(input, col, out int rows, out _);
        if (rows == 0)
            throw new InvalidOperationException($"Cannot fit the grid: the input has no rows (column '{_options.InputColumnName}').");
        var normalization = GridNormalization.Fit(xy, _options.LowPercentile, _options.HighPercentile, _options.Margin);
        return new BinToGridTransformer(_mlContext, _options, normalization);
    }

    /// <summary>The input schema shape with the grid cell (and position) columns added.</summary>
    public SchemaShape GetOutputSchema(SchemaShape inputSchema)
    {
        SchemaShapes.RequireFloatVector(inputSchema, _options.InputColumnName, "2-D layout");
        var added = new List<(string, DataViewType)>
        {
            (_options.OutputColumnName, new VectorDataViewType(NumberDataViewType.Int32, _options.GridSizes.Distinct().Count())),
        };
        if (_options.PositionColumnName is not null)
            added.Add((_options.PositionColumnName, new VectorDataViewType(NumberDataViewType.Single, 2)));
        return SchemaShapes.Append(inputSchema, added.ToArray());
    }
}
