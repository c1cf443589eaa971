using Microsoft.ML.Data;

namespace Microsoft.ML.ActivationAtlas.Common;

/// <summary>
/// A row-to-row mapping that appends computed columns to its input (an added column hides an input column of the
/// same name). Transformers of this library describe their added columns here and get a lazy
/// <see cref="IDataView"/> and an <see cref="IRowToRowMapper"/> (for prediction engines) from it.
/// </summary>
internal abstract class AppendedColumnsMapper
{
    private DataViewSchema? _outputSchema;

    protected AppendedColumnsMapper(DataViewSchema inputSchema) => InputSchema = inputSchema;

    /// <summary>The schema rows come in with.</summary>
    public DataViewSchema InputSchema { get; }

    /// <summary>Input columns, then the added columns.</summary>
    public DataViewSchema OutputSchema => _outputSchema ??= BuildOutputSchema();

    /// <summary>The added columns, in order.</summary>
    protected abstract IReadOnlyList<DataViewSchema.DetachedColumn> AddedColumns { get; }

    /// <summary>The input columns an added column reads.</summary>
    protected abstract IEnumerable<DataViewSchema.Column> Dependencies(int addedIndex);

    /// <summary>Creates the getter (a <c>ValueGetter&lt;T&gt;</c>) of added column <paramref name="addedIndex"/> over <paramref name="input"/>.</summary>
    protected abstract Delegate CreateGetter(DataViewRow input, int addedIndex);

    private DataViewSchema BuildOutputSchema()
    {
        var builder = new DataViewSchema.Builder();
        builder.AddColumns(InputSchema);
        foreach (var c in AddedColumns)
            builder.AddColumn(c.Name, c.Type, c.Annotations);
        return builder.ToSchema();
    }

    /// <summary>The input columns needed to serve <paramref name="outputColumns"/>.</summary>
    public IEnumerable<DataViewSchema.Column> InputColumnsFor(IEnumerable<DataViewSchema.Column> outputColumns)
    {
        var needed = new HashSet<int>();
        foreach (var c in outputColumns)
        {
            if (c.Index < InputSchema.Count)
                needed.Add(c.Index);
            else
                foreach (var d in Dependencies(c.Index - InputSchema.Count))
                    needed.Add(d.Index);
        }
        return needed.OrderBy(i => i).Select(i => InputSchema[i]);
    }

    /// <summary>Wraps an input row (or cursor) with the added columns that are active.</summary>
    public Delegate?[] CreateGetters(DataViewRow input, Func<int, bool> isOutputActive)
    {
        var getters = new Delegate?[AddedColumns.Count];
        for (int i = 0; i < getters.Length; i++)
            if (isOutputActive(InputSchema.Count + i))
                getters[i] = CreateGetter(input, i);
        return getters;
    }

    /// <summary>A lazy view of <paramref name="input"/> with the added columns.</summary>
    public IDataView Apply(IDataView input) => new MappedDataView(input, this);

    /// <summary>This mapping as an <see cref="IRowToRowMapper"/>.</summary>
    public IRowToRowMapper AsRowToRowMapper() => new RowMapper(this);

    private sealed class MappedDataView(IDataView input, AppendedColumnsMapper mapper) : IDataView
    {
        public bool CanShuffle => input.CanShuffle;

        public DataViewSchema Schema => mapper.OutputSchema;

        public long? GetRowCount() => input.GetRowCount();

        public DataViewRowCursor GetRowCursor(IEnumerable<DataViewSchema.Column> columnsNeeded, Random? rand = null)
        {
            var active = columnsNeeded.Select(c => c.Index).ToHashSet();
            var cursor = input.GetRowCursor(mapper.InputColumnsFor(columnsNeeded), rand);
            return new MappedCursor(cursor, mapper, active);
        }

        public DataViewRowCursor[] GetRowCursorSet(IEnumerable<DataViewSchema.Column> columnsNeeded, int n, Random? rand = null)
        {
            var active = columnsNeeded.Select(c => c.Index).ToHashSet();
            return input.GetRowCursorSet(mapper.InputColumnsFor(columnsNeeded), n, rand)
                .Select(c => (DataViewRowCursor)new MappedCursor(c, mapper, active)).ToArray();
        }
    }

    private sealed class MappedCursor : DataViewRowCursor
    {
        private readonly DataViewRowCursor _input;
        private readonly AppendedColumnsMapper _mapper;
        private readonly HashSet<int> _active;
        private readonly Delegate?[] _getters;

        public MappedCursor(DataViewRowCursor input, AppendedColumnsMapper mapper, HashSet<int> active)
        {
            _input = input;
            _mapper = mapper;
            _active = active;
            _getters = mapper.CreateGetters(input, active.Contains);
        }

        public override long Position => _input.Position;

        public override long Batch => _input.Batch;

        public override DataViewSchema Schema => _mapper.OutputSchema;

        public override ValueGetter<DataViewRowId> GetIdGetter() => _input.GetIdGetter();

        public override bool IsColumnActive(DataViewSchema.Column column) => _active.Contains(column.Index);

        public override ValueGetter<TValue> GetGetter<TValue>(DataViewSchema.Column column) => Getter<TValue>(_input, _mapper, _getters, column);

        public override bool MoveNext() => _input.MoveNext();

        protected override void Dispose(bool disposing)
        {
            if (disposing)
                _input.Dispose();
            base.Dispose(disposing);
        }
    }

    private static ValueGetter<TValue> Getter<TValue>(DataViewRow input, AppendedColumnsMapper mapper, Delegate?[] getters, DataViewSchema.Column column)
    {
        int inputCount = mapper.InputSchema.Count;
        if (column.Index < inputCount)
            return input.GetGetter<TValue>(mapper.InputSchema[column.Index]);
        var g = getters[column.Index - inputCount]
            ?? throw new InvalidOperationException($"Column '{column.Name}' was not requested as active.");
        return g as ValueGetter<TValue>
            ?? throw new InvalidOperationException($"Column '{column.Name}' is of type {column.Type}, not {typeof(TValue).Name}.");
    }

    private sealed class MappedRow(DataViewRow input, AppendedColumnsMapper mapper, HashSet<int> active) : DataViewRow
    {
        private readonly Delegate?[] _getters = mapper.CreateGetters(input, active.Contains);

        public override long Position => input.Position;

        public override long Batch => input.Batch;

        public override DataViewSchema Schema => mapper.OutputSchema;

        public override ValueGetter<DataViewRowId> GetIdGetter() => input.GetIdGetter();

        public override bool IsColumnActive(DataViewSchema.Column column) => active.Contains(column.Index);

        public override ValueGetter<TValue> GetGetter<TValue>(DataViewSchema.Column column) => Getter<TValue>(input, mapper, _getters, column);
    }

    private sealed class RowMapper(AppendedColumnsMapper mapper) : IRowToRowMapper
    {
        public DataViewSchema InputSchema => mapper.InputSchema;

        public DataViewSchema OutputSchema => mapper.OutputSchema;

        public IEnumerable<DataViewSchema.Column> GetDependencies(IEnumerable<DataViewSchema.Column> dependingColumns) => mapper.InputColumnsFor(dependingColumns);

        public DataViewRow GetRow(DataViewRow input, IEnumerable<DataViewSchema.Column> activeColumns)
            => new MappedRow(input, mapper, activeColumns.Select(c => c.Index).ToHashSet());
    }
}
