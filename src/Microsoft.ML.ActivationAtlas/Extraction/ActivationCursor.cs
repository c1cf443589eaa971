using Microsoft.ML.Data;

namespace Microsoft.ML.ActivationAtlas.Extraction;

/// <summary>
/// Fills a batch of images from the source cursor, runs ONNX Runtime once for the batch, samples the positions and
/// then serves the batch's output rows. Pass-through columns are buffered per batch.
/// </summary>
internal sealed class ActivationCursor : DataViewRowCursor
{
    private readonly ActivationExtractingTransformer _t;
    private readonly ActivationEngine _engine;
    private readonly DataViewRowCursor _source;
    private readonly ImageSlotReader? _reader;
    private readonly int _inputCount;
    private readonly bool[] _active;
    private readonly ColumnBuffer?[] _buffers;
    private readonly bool _compute;
    private readonly int _batchSize;
    private readonly float[] _batch;
    private readonly long[] _sourceRows;
    private readonly string?[] _slotPaths;
    private readonly string?[] _slotProblems;
    private readonly int _rowsPerImage;

    // Output rows of the current batch.
    private readonly int[] _rowSlot;
    private readonly int[] _rowY;
    private readonly int[] _rowX;
    private readonly float[][] _values;
    private readonly float[]? _means;
    private int _rowCount;
    private int _current = -1;
    private long _position = -1;
    private bool _sourceDone;

    public ActivationCursor(ActivationExtractingTransformer t, IDataView source, DataViewSchema schema, IEnumerable<DataViewSchema.Column> columnsNeeded)
    {
        _t = t;
        _engine = t.Engine;
        Schema = schema;
        _inputCount = source.Schema.Count;
        _active = new bool[schema.Count];
        foreach (var c in columnsNeeded)
            _active[c.Index] = true;
        _compute = Enumerable.Range(_inputCount, schema.Count - _inputCount - 1).Any(i => _active[i]);
        bool readImages = _compute || t.Settings.BadRows == BadRowHandling.Skip;

        var sourceColumns = new List<DataViewSchema.Column>();
        for (int i = 0; i < _inputCount; i++)
            if (_active[i])
                sourceColumns.Add(source.Schema[i]);
        if (readImages)
            sourceColumns.AddRange(ImageSlotReader.Dependencies(t, source.Schema));
        _source = source.GetRowCursor(sourceColumns.Distinct());

        _batchSize = t.BatchSize;
        _rowsPerImage = _engine.Sampler.RowsPerImage;
        _buffers = new ColumnBuffer?[_inputCount];
        var imageColumn = t.InputColumn(source.Schema);
        for (int i = 0; i < _inputCount; i++)
            if (_active[i])
                _buffers[i] = ColumnBuffer.Create(_source, source.Schema[i], _batchSize);
        if (readImages)
            _reader = new ImageSlotReader(t, _source, imagePassedThrough: _active[imageColumn.Index]);
        _batch = _compute || _reader is { IsPathInput: true } ? new float[_batchSize * _engine.Converter.Length] : new float[_engine.Converter.Length];
        _sourceRows = new long[_batchSize];
        _slotPaths = new string?[_batchSize];
        _slotProblems = new string?[_batchSize];
        int maxRows = _batchSize * _rowsPerImage;
        _rowSlot = new int[maxRows];
        _rowY = new int[maxRows];
        _rowX = new int[maxRows];
        _values = _engine.Layers.Select(l => _compute ? new float[maxRows * l.Channels] : []).ToArray();
        if (_compute && t.SpatialMeanColumnName is not null)
            _means = new float[maxRows * _engine.Layers[0].Channels];
    }

    public override DataViewSchema Schema { get; }

    public override long Position => _position;

    public override long Batch => 0;

    public override bool IsColumnActive(DataViewSchema.Column column) => _active[column.Index];

    public override ValueGetter<DataViewRowId> GetIdGetter() =>
        (ref DataViewRowId id) => id = new DataViewRowId((ulong)_position, 0);

    public override bool MoveNext()
    {
        if (_current + 1 < _rowCount)
        {
            _current++;
            _position++;
            return true;
        }
        while (!_sourceDone)
        {
            FillBatch();
            if (_rowCount > 0)
            {
                _current = 0;
                _position++;
                return true;
            }
        }
        _rowCount = 0;
        return false;
    }

    public override ValueGetter<TValue> GetGetter<TValue>(DataViewSchema.Column column)
    {
        if (!_active[column.Index])
            throw new InvalidOperationException($"Column '{column.Name}' was not requested when the cursor was created.");
        Delegate getter;
        if (column.Index < _inputCount)
            getter = _buffers[column.Index]!.Getter(() => _rowSlot[_current]);
        else if (column.Index == Schema.Count - 1)
            getter = (ValueGetter<VBuffer<int>>)GetPosition;
        else
        {
            int l = column.Index - _inputCount;
            bool mean = l == _engine.Layers.Length;
            int channels = _engine.Layers[mean ? 0 : l].Channels;
            float[] values = mean ? _means! : _values[l];
            getter = (ValueGetter<VBuffer<float>>)((ref VBuffer<float> dst) =>
            {
                var editor = VBufferEditor.Create(ref dst, channels);
                values.AsSpan(_current * channels, channels).CopyTo(editor.Values);
                dst = editor.Commit();
            });
        }
        return getter as ValueGetter<TValue>
            ?? throw new InvalidOperationException($"Column '{column.Name}' is {column.Type}; it cannot be read as {typeof(TValue).Name}.");
    }

    private void GetPosition(ref VBuffer<int> dst)
    {
        var editor = VBufferEditor.Create(ref dst, 2);
        editor.Values[0] = _rowY[_current];
        editor.Values[1] = _rowX[_current];
        dst = editor.Commit();
    }

    private void FillBatch()
    {
        _t.Settings.CancellationToken.ThrowIfCancellationRequested();
        int filled = 0;
        int length = _engine.Converter.Length;
        while (filled < _batchSize)
        {
            if (!_source.MoveNext())
            {
                _sourceDone = true;
                break;
            }
            long row = _source.Position;
            if (_reader is { IsPathInput: true })
            {
                _slotPaths[filled] = _reader.CurrentPath();
            }
            else if (_reader is not null)
            {
                var slot = _compute ? _batch.AsSpan(filled * length, length) : _batch.AsSpan(0, length);
                string? problem = _reader.Read(slot, out var error);
                if (problem is not null)
                {
                    if (_t.Settings.BadRows == BadRowHandling.Fail)
                        throw _reader.Failure(row, problem, error, _reader.CurrentPath());
                    _t.RecordSkip(row, _reader.CurrentPath(), problem);
                    continue;
                }
            }
            for (int i = 0; i < _inputCount; i++)
                _buffers[i]?.Fill(filled);
            _sourceRows[filled] = row;
            filled++;
        }

        if (_reader is { IsPathInput: true } && filled > 0)
            filled = DecodeFiles(filled);

        _rowCount = filled * _rowsPerImage;
        _current = -1;
        if (filled == 0)
            return;
        var sampler = _engine.Sampler;
        for (int s = 0; s < filled; s++)
        {
            int first = s * _rowsPerImage;
            sampler.Positions(_sourceRows[s], _rowY.AsSpan(first, _rowsPerImage), _rowX.AsSpan(first, _rowsPerImage));
            _rowSlot.AsSpan(first, _rowsPerImage).Fill(s);
        }
        if (!_compute)
            return;

        using var outputs = _engine.Run(_batch, filled);
        for (int l = 0; l < _engine.Layers.Length; l++)
        {
            var layer = _engine.Layers[l];
            var data = outputs[l].GetTensorDataAsSpan<float>();
            int c = layer.Channels;
            for (int r = 0; r < _rowCount; r++)
                sampler.Gather(data, layer, _rowSlot[r], _rowY[r], _rowX[r], _values[l].AsSpan(r * c, c));
            if (l == 0 && _means is not null)
            {
                // The spatial mean once per image, copied to the image's other rows.
                for (int r = 0; r < _rowCount; r++)
                {
                    var dst = _means.AsSpan(r * c, c);
                    if (r % _rowsPerImage == 0)
                        sampler.Gather(data, layer, _rowSlot[r], -1, -1, dst);
                    else
                        _means.AsSpan((r - 1) * c, c).CopyTo(dst);
                }
            }
        }
    }

    // Decodes the batch's image files in parallel, then drops (Skip) or reports (Fail) the bad ones in row order.
    private int DecodeFiles(int filled)
    {
        int length = _engine.Converter.Length;
        var reader = _reader!;
        Parallel.For(0, filled, s => _slotProblems[s] = reader.Decode(_slotPaths[s]!, _batch.AsSpan(s * length, length)));
        int kept = 0;
        for (int s = 0; s < filled; s++)
        {
            if (_slotProblems[s] is { } problem)
            {
                if (_t.Settings.BadRows == BadRowHandling.Fail)
                    throw reader.Failure(_sourceRows[s], problem, null, _slotPaths[s]);
                _t.RecordSkip(_sourceRows[s], _slotPaths[s], problem);
                continue;
            }
            if (kept != s)
            {
                _batch.AsSpan(s * length, length).CopyTo(_batch.AsSpan(kept * length, length));
                _sourceRows[kept] = _sourceRows[s];
                foreach (var b in _buffers)
                    b?.Move(s, kept);
            }
            kept++;
        }
        return kept;
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
            _source.Dispose();
        base.Dispose(disposing);
    }
}
