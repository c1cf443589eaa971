using Microsoft.ML.ActivationAtlas.Common;
using Microsoft.ML.ActivationAtlas.Persistence;
using Microsoft.ML.Data;

namespace Microsoft.ML.ActivationAtlas.Binning;

/// <summary>
/// Assigns every row of a 2-D layout column its cell in each nested grid, with the normalisation fitted by
/// <see cref="BinToGridEstimator"/> (so new data lands in the same cells as the data it was fitted on).
/// The output column holds one Int32 per grid size, coarse to fine: <c>y * size + x</c>; it carries the grid sizes
/// as the <c>GridSizes</c> annotation, which <c>mlContext.Data.AggregateAtlas</c> reads.
/// </summary>
[AtlasPersistence("bin-to-grid")]
public sealed class BinToGridTransformer : ITransformer, IAtlasPersistable
{
    /// <summary>Name of the annotation (Int32 vector) on the cell column listing the grid sizes.</summary>
    public const string GridSizesAnnotation = "GridSizes";

    private readonly MLContext _mlContext;
    private readonly BinToGridEstimator.Options _options;

    internal BinToGridTransformer(MLContext mlContext, BinToGridEstimator.Options options, GridNormalization normalization)
    {
        _mlContext = mlContext;
        _options = options;
        Normalization = normalization;
        Levels = new GridLevels(options.GridSizes);
    }

    /// <summary>The fitted normalisation bounds.</summary>
    public GridNormalization Normalization { get; }

    /// <summary>The nested grids.</summary>
    public GridLevels Levels { get; }

    /// <summary>The layout column read.</summary>
    public string InputColumnName => _options.InputColumnName;

    /// <summary>The cell column written.</summary>
    public string OutputColumnName => _options.OutputColumnName;

    /// <summary>The normalised position column written, or null.</summary>
    public string? PositionColumnName => _options.PositionColumnName;

    /// <summary>Always true: rows map one to one.</summary>
    public bool IsRowToRowMapper => true;

    /// <summary>The input schema with the cell (and position) columns.</summary>
    public DataViewSchema GetOutputSchema(DataViewSchema inputSchema) => new Mapper(this, inputSchema).OutputSchema;

    /// <summary>A row mapper, for prediction engines.</summary>
    public IRowToRowMapper GetRowToRowMapper(DataViewSchema inputSchema) => new Mapper(this, inputSchema).AsRowToRowMapper();

    /// <summary>Lazily adds the cell (and position) columns to <paramref name="input"/>.</summary>
    public IDataView Transform(IDataView input)
    {
        ArgumentNullException.ThrowIfNull(input);
        return new Mapper(this, input.Schema).Apply(input);
    }

    /// <summary>The finest-cell Z-order codes of interleaved (x, y) layout points (one O(N) parallel pass).</summary>
    internal int[] FinestCodes(float[] xy, CancellationToken cancellationToken = default) => GridBinner.FinestCodes(xy, Normalization, Levels, cancellationToken);

    /// <summary>Not supported: ML.NET's model format is internal; use <c>mlContext.Model.SaveAtlas(...)</c>.</summary>
    void ICanSaveModel.Save(ModelSaveContext ctx)
        => throw new NotSupportedException("BinToGridTransformer is saved with mlContext.Model.SaveAtlas(...), not mlContext.Model.Save(...).");

    void IAtlasPersistable.SaveState(AtlasStateWriter writer)
    {
        writer.WriteJson("options", new State
        {
            OutputColumnName = _options.OutputColumnName,
            InputColumnName = _options.InputColumnName,
            PositionColumnName = _options.PositionColumnName,
            GridSizes = Levels.Sizes.ToArray(),
            LowPercentile = _options.LowPercentile,
            HighPercentile = _options.HighPercentile,
            Margin = _options.Margin,
        });
        writer.WriteFloats("bounds", [Normalization.MinX, Normalization.MaxX, Normalization.MinY, Normalization.MaxY]);
    }

    internal static ITransformer LoadState(MLContext mlContext, AtlasStateReader reader)
    {
        var s = reader.ReadJson<State>("options");
        var b = reader.ReadFloats("bounds");
        if (b.Length != 4)
            throw new InvalidDataException($"{reader.ModelPath}: bin-to-grid bounds hold {b.Length} values, expected 4.");
        var options = new BinToGridEstimator.Options
        {
            OutputColumnName = s.OutputColumnName,
            InputColumnName = s.InputColumnName,
            PositionColumnName = s.PositionColumnName,
            GridSizes = s.GridSizes,
            LowPercentile = s.LowPercentile,
            HighPercentile = s.HighPercentile,
            Margin = s.Margin,
        };
        options.Validate();
        return new BinToGridTransformer(mlContext, options, new GridNormalization(b[0], b[1], b[2], b[3]));
    }

    private sealed class State
    {
        public string OutputColumnName = "";
        public string InputColumnName = "";
        public string? PositionColumnName;
        public int[] GridSizes = [];
        public float LowPercentile;
        public float HighPercentile;
        public float Margin;
    }

    private sealed class Mapper : AppendedColumnsMapper
    {
        private readonly BinToGridTransformer _parent;
        private readonly DataViewSchema.Column _input;
        private readonly DataViewSchema.DetachedColumn[] _added;

        public Mapper(BinToGridTransformer parent, DataViewSchema inputSchema) : base(inputSchema)
        {
            _parent = parent;
            _input = SchemaShapes.FloatVector(inputSchema, parent.InputColumnName, "2-D layout", 2);
            int levels = parent.Levels.Count;
            var sizes = parent.Levels.Sizes.ToArray();
            var annotations = new DataViewSchema.Annotations.Builder();
            annotations.Add(GridSizesAnnotation, new VectorDataViewType(NumberDataViewType.Int32, levels),
                (ref VBuffer<int> v) => InMemoryDataView.Fill(ref v, sizes));
            var added = new List<DataViewSchema.DetachedColumn>
            {
                new(parent.OutputColumnName, new VectorDataViewType(NumberDataViewType.Int32, levels), annotations.ToAnnotations()),
            };
            if (parent.PositionColumnName is not null)
                added.Add(new(parent.PositionColumnName, new VectorDataViewType(NumberDataViewType.Single, 2)));
            _added = added.ToArray();
        }

        protected override IReadOnlyList<DataViewSchema.DetachedColumn> AddedColumns => _added;

        protected override IEnumerable<DataViewSchema.Column> Dependencies(int addedIndex) => [_input];

        protected override Delegate CreateGetter(DataViewRow input, int addedIndex)
        {
            var layout = input.GetGetter<VBuffer<float>>(_input);
            VBuffer<float> point = default;
            var norm = _parent.Normalization;
            var levels = _parent.Levels;
            string column = _parent.InputColumnName;

            (float U, float V) Read()
            {
                layout(ref point);
                if (point.Length != 2)
                    throw new InvalidOperationException($"Column '{column}' row {input.Position}: expected 2 layout values, got {point.Length}.");
                float x = point.GetItemOrDefault(0), y = point.GetItemOrDefault(1);
                if (!float.IsFinite(x) || !float.IsFinite(y))
                    throw new InvalidOperationException($"Column '{column}' row {input.Position}: the layout point ({x}, {y}) is not finite.");
                return norm.Normalize(x, y);
            }

            if (addedIndex == 0)
            {
                return (ValueGetter<VBuffer<int>>)((ref VBuffer<int> dst) =>
                {
                    var (u, v) = Read();
                    var (fx, fy) = levels.FinestCell(u, v);
                    var editor = VBufferEditor.Create(ref dst, levels.Count);
                    for (int l = 0; l < levels.Count; l++)
                    {
                        int shift = levels.Shift(l);
                        editor.Values[l] = (fy >> shift) * levels.Sizes[l] + (fx >> shift);
                    }
                    dst = editor.Commit();
                });
            }
            return (ValueGetter<VBuffer<float>>)((ref VBuffer<float> dst) =>
            {
                var (u, v) = Read();
                var editor = VBufferEditor.Create(ref dst, 2);
                editor.Values[0] = u;
                editor.Values[1] = v;
                dst = editor.Commit();
            });
        }
    }
}
