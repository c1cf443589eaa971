using Microsoft.ML.Data;

namespace Microsoft.ML.ActivationAtlas.Projection;

/// <summary>
/// The input data view with one more column holding precomputed layout positions (row-major, one row per input row).
/// </summary>
internal sealed class LayoutDataView : IDataView
{
    private readonly IDataView _input;
    private readonly float[] _layout;
    private readonly int _size;
    private readonly int _rows;

    public LayoutDataView(IDataView input, string outputColumn, float[] layout, int size, int rows)
    {
        _input = input;
        _layout = layout;
        _size = size;
        _rows = rows;
        Schema = ProjectionColumns.OutputSchema(input.Schema, outputColumn, size);
    }

    public bool CanShuffle => false;

    public DataViewSchema Schema { get; }

    public long? GetRowCount() => _rows;

    public DataViewRowCursor GetRowCursor(IEnumerable<DataViewSchema.Column> columnsNeeded, Random? rand = null)
    {
        int inputCount = _input.Schema.Count;
        var needed = columnsNeeded.Where(c => c.Index < inputCount).Select(c => _input.Schema[c.Index]).ToList();
        return new Cursor(this, _input.GetRowCursor(needed), columnsNeeded.Any(c => c.Index == inputCount));
    }

    public DataViewRowCursor[] GetRowCursorSet(IEnumerable<DataViewSchema.Column> columnsNeeded, int n, Random? rand = null) =>
        [GetRowCursor(columnsNeeded, rand)];

    private sealed class Cursor(LayoutDataView parent, DataViewRowCursor input, bool layoutActive) : DataViewRowCursor
    {
        public override DataViewSchema Schema => parent.Schema;

        public override long Position => input.Position;

        public override long Batch => input.Batch;

        public override ValueGetter<DataViewRowId> GetIdGetter() => input.GetIdGetter();

        public override bool MoveNext() => input.MoveNext();

        public override bool IsColumnActive(DataViewSchema.Column column) =>
            column.Index == parent._input.Schema.Count ? layoutActive : input.IsColumnActive(parent._input.Schema[column.Index]);

        public override ValueGetter<TValue> GetGetter<TValue>(DataViewSchema.Column column)
        {
            if (column.Index != parent._input.Schema.Count)
                return input.GetGetter<TValue>(parent._input.Schema[column.Index]);
            if (typeof(TValue) != typeof(VBuffer<float>))
                throw new InvalidOperationException($"Column '{column.Name}' holds VBuffer<float>, not {typeof(TValue).Name}.");
            int size = parent._size;
            ValueGetter<VBuffer<float>> getter = (ref VBuffer<float> value) =>
            {
                long row = input.Position;
                if (row < 0 || row >= parent._rows)
                    throw new InvalidOperationException("The cursor is not on a row.");
                var editor = VBufferEditor.Create(ref value, size);
                parent._layout.AsSpan((int)row * size, size).CopyTo(editor.Values);
                value = editor.Commit();
            };
            return (ValueGetter<TValue>)(Delegate)getter;
        }

        protected override void Dispose(bool disposing)
        {
            if (disposing)
                input.Dispose();
            base.Dispose(disposing);
        }
    }
}
