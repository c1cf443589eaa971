using Microsoft.ML.Data;

namespace Microsoft.ML.ActivationAtlas.Common;

/// <summary>Fills <paramref name="value"/> with the value of one column at <paramref name="row"/>.</summary>
internal delegate void RowValue<T>(int row, ref T value);

/// <summary>A read-only data view over values computed per row index (e.g. the cells of an atlas).</summary>
internal sealed class InMemoryDataView : IDataView
{
    private readonly int _rows;
    private readonly Delegate[] _values;

    private InMemoryDataView(int rows, DataViewSchema schema, Delegate[] values)
    {
        _rows = rows;
        Schema = schema;
        _values = values;
    }

    public bool CanShuffle => false;

    public DataViewSchema Schema { get; }

    public long? GetRowCount() => _rows;

    public DataViewRowCursor GetRowCursor(IEnumerable<DataViewSchema.Column> columnsNeeded, Random? rand = null)
        => new Cursor(this, columnsNeeded.Select(c => c.Index).ToHashSet());

    public DataViewRowCursor[] GetRowCursorSet(IEnumerable<DataViewSchema.Column> columnsNeeded, int n, Random? rand = null)
        => [GetRowCursor(columnsNeeded, rand)];

    /// <summary>Collects columns, then builds the view.</summary>
    public sealed class Builder(int rows)
    {
        private readonly DataViewSchema.Builder _schema = new();
        private readonly List<Delegate> _values = [];

        public Builder Add<T>(string name, DataViewType type, RowValue<T> value, DataViewSchema.Annotations? annotations = null)
        {
            _schema.AddColumn(name, type, annotations);
            _values.Add(value);
            return this;
        }

        public InMemoryDataView Build() => new(rows, _schema.ToSchema(), _values.ToArray());
    }

    /// <summary>Copies <paramref name="values"/> into a vector buffer.</summary>
    public static void Fill<T>(ref VBuffer<T> dst, ReadOnlySpan<T> values)
    {
        var editor = VBufferEditor.Create(ref dst, values.Length);
        values.CopyTo(editor.Values);
        dst = editor.Commit();
    }

    private sealed class Cursor(InMemoryDataView view, HashSet<int> active) : DataViewRowCursor
    {
        private long _position = -1;

        public override long Position => _position;

        public override long Batch => 0;

        public override DataViewSchema Schema => view.Schema;

        public override ValueGetter<DataViewRowId> GetIdGetter() => (ref DataViewRowId id) => id = new DataViewRowId((ulong)_position, 0);

        public override bool IsColumnActive(DataViewSchema.Column column) => active.Contains(column.Index);

        public override ValueGetter<TValue> GetGetter<TValue>(DataViewSchema.Column column)
        {
            if (view._values[column.Index] is not RowValue<TValue> value)
                throw new InvalidOperationException($"Column '{column.Name}' is of type {column.Type}, not {typeof(TValue).Name}.");
            return (ref TValue v) =>
            {
                if (_position < 0 || _position >= view._rows)
                    throw new InvalidOperationException("The cursor is not on a row.");
                value((int)_position, ref v);
            };
        }

        public override bool MoveNext()
        {
            if (_position < view._rows)
                _position++;
            return _position < view._rows;
        }
    }
}
