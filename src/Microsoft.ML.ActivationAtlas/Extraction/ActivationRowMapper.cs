using Microsoft.ML.Data;

namespace Microsoft.ML.ActivationAtlas.Extraction;

/// <summary>Maps one input row to one output row (batch of one): what <c>PredictionEngine</c> uses.</summary>
internal sealed class ActivationRowMapper : IRowToRowMapper
{
    private readonly ActivationExtractingTransformer _t;

    public ActivationRowMapper(ActivationExtractingTransformer t, DataViewSchema inputSchema)
    {
        _t = t;
        InputSchema = inputSchema;
        OutputSchema = t.GetOutputSchema(inputSchema);
    }

    public DataViewSchema InputSchema { get; }

    public DataViewSchema OutputSchema { get; }

    public IEnumerable<DataViewSchema.Column> GetDependencies(IEnumerable<DataViewSchema.Column> dependingColumns)
    {
        var result = new List<DataViewSchema.Column>();
        bool ours = false;
        foreach (var c in dependingColumns)
        {
            if (c.Index < InputSchema.Count)
                result.Add(InputSchema[c.Index]);
            else if (c.Index < OutputSchema.Count - 1)
                ours = true;
        }
        if (ours)
            result.AddRange(ImageSlotReader.Dependencies(_t, InputSchema));
        return result.Distinct();
    }

    public DataViewRow GetRow(DataViewRow input, IEnumerable<DataViewSchema.Column> activeColumns) =>
        new MappedRow(_t, input, OutputSchema, activeColumns);

    private sealed class MappedRow : DataViewRow
    {
        private readonly ActivationExtractingTransformer _t;
        private readonly DataViewRow _input;
        private readonly bool[] _active;
        private readonly ImageSlotReader? _reader;
        private readonly float[] _pixels;
        private readonly float[][] _values;
        private readonly float[] _mean;
        private readonly int[] _y = new int[1];
        private readonly int[] _x = new int[1];
        private long _computedFor = long.MinValue;
        private long _positionFor = long.MinValue;

        public MappedRow(ActivationExtractingTransformer t, DataViewRow input, DataViewSchema schema, IEnumerable<DataViewSchema.Column> activeColumns)
        {
            _t = t;
            _input = input;
            Schema = schema;
            _active = new bool[schema.Count];
            foreach (var c in activeColumns)
                _active[c.Index] = true;
            bool compute = Enumerable.Range(input.Schema.Count, schema.Count - input.Schema.Count - 1).Any(i => _active[i]);
            if (compute)
                _reader = new ImageSlotReader(t, input, imagePassedThrough: _active[t.InputColumn(input.Schema).Index]);
            _pixels = new float[t.Engine.Converter.Length];
            _values = t.Engine.Layers.Select(l => new float[l.Channels]).ToArray();
            _mean = t.SpatialMeanColumnName is null ? [] : new float[t.Engine.Layers[0].Channels];
        }

        public override DataViewSchema Schema { get; }

        public override long Position => _input.Position;

        public override long Batch => _input.Batch;

        public override ValueGetter<DataViewRowId> GetIdGetter() => _input.GetIdGetter();

        public override bool IsColumnActive(DataViewSchema.Column column) => _active[column.Index];

        public override ValueGetter<TValue> GetGetter<TValue>(DataViewSchema.Column column)
        {
            if (column.Index < _input.Schema.Count)
                return _input.GetGetter<TValue>(_input.Schema[column.Index]);
            Delegate getter;
            if (column.Index == Schema.Count - 1)
            {
                getter = (ValueGetter<VBuffer<int>>)((ref VBuffer<int> dst) =>
                {
                    EnsurePosition();
                    var editor = VBufferEditor.Create(ref dst, 2);
                    editor.Values[0] = _y[0];
                    editor.Values[1] = _x[0];
                    dst = editor.Commit();
                });
            }
            else
            {
                int l = column.Index - _input.Schema.Count;
                float[] values = l == _values.Length ? _mean : _values[l];
                getter = (ValueGetter<VBuffer<float>>)((ref VBuffer<float> dst) =>
                {
                    EnsureComputed();
                    var editor = VBufferEditor.Create(ref dst, values.Length);
                    values.CopyTo(editor.Values);
                    dst = editor.Commit();
                });
            }
            return getter as ValueGetter<TValue>
                ?? throw new InvalidOperationException($"Column '{column.Name}' is {column.Type}; it cannot be read as {typeof(TValue).Name}.");
        }

        private void EnsurePosition()
        {
            long row = _input.Position;
            if (_positionFor == row && row >= 0)
                return;
            _t.Engine.Sampler.Positions(Math.Max(row, 0), _y, _x);
            _positionFor = row;
        }

        private void EnsureComputed()
        {
            long row = _input.Position;
            if (_computedFor == row && row >= 0)
                return;
            EnsurePosition();
            string? problem = _reader!.Read(_pixels, out var error);
            if (problem is not null)
                throw _reader.Failure(row, problem, error, _reader.CurrentPath());
            var engine = _t.Engine;
            using var outputs = engine.Run(_pixels, 1);
            for (int l = 0; l < engine.Layers.Length; l++)
            {
                var layer = engine.Layers[l];
                engine.Sampler.Gather(outputs[l].GetTensorDataAsSpan<float>(), layer, 0, _y[0], _x[0], _values[l]);
                if (l == 0 && _mean.Length > 0)
                    engine.Sampler.Gather(outputs[0].GetTensorDataAsSpan<float>(), layer, 0, -1, -1, _mean);
            }
            _computedFor = row;
        }
    }
}
