using Microsoft.ML.Data;

namespace Microsoft.ML.ActivationAtlas.Extraction;

/// <summary>
/// Holds one pass-through input column's values for every row of a batch, since the source cursor has moved on
/// by the time the batch's rows are read.
/// </summary>
internal abstract class ColumnBuffer
{
    public abstract void Fill(int slot);

    public abstract Delegate Getter(Func<int> currentSlot);

    /// <summary>Moves a slot's value to an earlier slot (when the batch is compacted after skipped rows).</summary>
    public abstract void Move(int from, int to);

    public static ColumnBuffer Create(DataViewRow source, DataViewSchema.Column column, int capacity)
    {
        var raw = column.Type.RawType;
        Type type;
        if (column.Type is VectorDataViewType vector)
            type = typeof(VectorBuffer<>).MakeGenericType(vector.ItemType.RawType);
        else if (raw == typeof(ReadOnlyMemory<char>))
            type = typeof(TextBuffer);
        else
            type = typeof(ScalarBuffer<>).MakeGenericType(raw);
        return (ColumnBuffer)Activator.CreateInstance(type, source, column, capacity)!;
    }

    private sealed class ScalarBuffer<T>(DataViewRow source, DataViewSchema.Column column, int capacity) : ColumnBuffer
    {
        private readonly ValueGetter<T> _getter = source.GetGetter<T>(column);
        private readonly T[] _values = new T[capacity];

        public override void Fill(int slot)
        {
            _values[slot] = default!;
            _getter(ref _values[slot]);
        }

        public override Delegate Getter(Func<int> currentSlot) => (ValueGetter<T>)((ref T dst) => dst = _values[currentSlot()]);

        public override void Move(int from, int to) => _values[to] = _values[from];
    }

    private sealed class VectorBuffer<T>(DataViewRow source, DataViewSchema.Column column, int capacity) : ColumnBuffer
    {
        private readonly ValueGetter<VBuffer<T>> _getter = source.GetGetter<VBuffer<T>>(column);
        private readonly VBuffer<T>[] _values = new VBuffer<T>[capacity];
        private VBuffer<T> _scratch;

        public override void Fill(int slot)
        {
            _getter(ref _scratch);
            _scratch.CopyTo(ref _values[slot]);
        }

        public override Delegate Getter(Func<int> currentSlot) =>
            (ValueGetter<VBuffer<T>>)((ref VBuffer<T> dst) => _values[currentSlot()].CopyTo(ref dst));

        public override void Move(int from, int to) => (_values[to], _values[from]) = (_values[from], _values[to]);
    }

    private sealed class TextBuffer(DataViewRow source, DataViewSchema.Column column, int capacity) : ColumnBuffer
    {
        private readonly ValueGetter<ReadOnlyMemory<char>> _getter = source.GetGetter<ReadOnlyMemory<char>>(column);
        private readonly ReadOnlyMemory<char>[] _values = new ReadOnlyMemory<char>[capacity];
        private ReadOnlyMemory<char> _scratch;

        public override void Fill(int slot)
        {
            _getter(ref _scratch);
            _values[slot] = _scratch.ToString().AsMemory(); // the source may reuse its buffer
        }

        public override Delegate Getter(Func<int> currentSlot) =>
            (ValueGetter<ReadOnlyMemory<char>>)((ref ReadOnlyMemory<char> dst) => dst = _values[currentSlot()]);

        public override void Move(int from, int to) => _values[to] = _values[from];
    }
}
