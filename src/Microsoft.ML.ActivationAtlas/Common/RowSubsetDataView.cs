using Microsoft.ML.Data;

namespace Microsoft.ML.ActivationAtlas.Common;

/// <summary>
/// The rows of an input view at given positions (sorted, distinct), with an added Int32 column holding each row's
/// position in the input, so results computed on the subset can point back at the original rows.
/// </summary>
internal sealed class RowSubsetDataView : IDataView
{
    private readonly IDataView _input;
    private readonly int[] _rows;
    private readonly string _sourceRowColumn;

    public RowSubsetDataView(IDataView input, int[] sortedRows, string sourceRowColumn)
    {
        for (int i = 1; i < sortedRows.Length; i++)
            if (sortedRows[i] <= sortedRows[i - 1])
                throw new ArgumentException("Row indices must be sorted and distinct.", nameof(sortedRows));
        _input = input;
        _rows = sortedRows;
        _sourceRowColumn = sourceRowColumn;
        var b = new DataViewSchema.Builder();
        b.AddColumns(input.Schema);
        b.AddColumn(sourceRowColumn, NumberDataViewType.Int32);
        Schema = b.ToSchema();
    }

    public bool CanShuffle => false;

    public DataViewSchema Schema { get; }

    public long? GetRowCount() => _rows.Length;

    public DataViewRowCursor GetRowCursor(IEnumerable<DataViewSchema.Column> columnsNeeded, Random? rand = null)
    {
        var active = columnsNeeded.Select(c => c.Index).ToHashSet();
        var inputCols = active.Where(i => i < _input.Schema.Count).Select(i => _input.Schema[i]);
        return new Cursor(this, _input.GetRowCursor(inputCols), active);
    }

    public DataViewRowCursor[] GetRowCursorSet(IEnumerable<DataViewSchema.Column> columnsNeeded, int n, Random? rand = null)
        => [GetRowCursor(columnsNeeded, rand)];

    private sealed class Cursor(RowSubsetDataView view, DataViewRowCursor input, HashSet<int> active) : DataViewRowCursor
    {
        private int _next;
        private long _position = -1;

        public override long Position => _position;

        public override long Batch => 0;

        public override DataViewSchema Schema => view.Schema;

        public override ValueGetter<DataViewRowId> GetIdGetter() => input.GetIdGetter();

        public override bool IsColumnActive(DataViewSchema.Column column) => active.Contains(column.Index);

        public override ValueGetter<TValue> GetGetter<TValue>(DataViewSchema.Column column)
        {
            if (column.Index < view._input.Schema.Count)
                return input.GetGetter<TValue>(view._input.Schema[column.Index]);
            if (typeof(TValue) != typeof(int))
                throw new InvalidOperationException($"Column '{view._sourceRowColumn}' is Int32, not {typeof(TValue).Name}.");
            ValueGetter<int> g = (ref int v) => v = (int)input.Position;
            return (ValueGetter<TValue>)(Delegate)g;
        }

        public override bool MoveNext()
        {
            if (_next >= view._rows.Length)
                return false;
            int target = view._rows[_next++];
            while (input.Position < target)
                if (!input.MoveNext())
                    throw new InvalidOperationException($"The input has no row {target}; the subset was computed on different data.");
            _position++;
            return true;
        }

        protected override void Dispose(bool disposing)
        {
            if (disposing)
                input.Dispose();
            base.Dispose(disposing);
        }
    }
}
