using Microsoft.ML.ActivationAtlas.Common;
using Microsoft.ML.ActivationAtlas.Extraction;
using Microsoft.ML.ActivationAtlas.Onnx;
using Microsoft.ML.ActivationAtlas.Persistence;
using Microsoft.ML.Data;
using Microsoft.ML.Transforms.Image;

namespace Microsoft.ML.ActivationAtlas.Attribution;

/// <summary>
/// Adds the attribution column: for each row, h . d(logit_k)/d(h) for every class k, where h is the activation
/// vector of the layer at the row's position. Rows are computed in batches when the data is read in order.
/// Averaging the column over rows (e.g. per atlas cell) gives the cell's class attribution.
/// </summary>
[AtlasPersistence("attribution")]
public sealed class AttributionTransformer : ITransformer, IAtlasPersistable, IDisposable
{
    private readonly AttributionEstimator.Options _options;
    private readonly AttributionEngine _engine;

    internal AttributionTransformer(MLContext mlContext, AttributionEstimator.Options options)
    {
        _ = mlContext;
        _options = options;
        _engine = new AttributionEngine(options.Model!, options.Layer, options.LogitsTensorName, options.Session, options.MaxPoolRelaxation, options.Tokens);
        ClassNames = Attribution.ClassNames.Resolve(options.Model!.Network, _engine.ClassCount, options.ClassNames, options.LabelsPath);
        if (options.Method == AttributionMethod.LinearHead && _engine.LinearHead is null)
            throw new ArgumentException($"Options.Method is LinearHead, but the logits '{_engine.LogitsName}' of {options.Model.Description} do not read layer '{_engine.Layer.Name}' only through a linear head on its spatial mean (GlobalAveragePool, Flatten, Gemm).");
        UsesClosedForm = options.ActivationColumnName is not null && options.Method != AttributionMethod.TangentGraph && _engine.LinearHead is not null;
        if (!UsesClosedForm)
            _engine.Compile();
    }

    /// <summary>
    /// Whether the attributions come from the closed form (W_k . h) / (H W) over the activation column (a linear head
    /// on the layer's spatial mean) rather than from the tangent graph run on the images.
    /// </summary>
    public bool UsesClosedForm { get; }

    /// <summary>The attribution column.</summary>
    public string OutputColumnName => _options.OutputColumnName;

    /// <summary>The resolved layer tensor.</summary>
    public string LayerName => _engine.Layer.Name;

    /// <summary>The logits tensor.</summary>
    public string LogitsTensorName => _engine.LogitsName;

    /// <summary>The class names (slot names of the output column).</summary>
    public IReadOnlyList<string> ClassNames { get; }

    /// <summary>Always true.</summary>
    public bool IsRowToRowMapper => true;

    /// <summary>The input schema with the attribution column.</summary>
    /// <param name="inputSchema">The input schema.</param>
    public DataViewSchema GetOutputSchema(DataViewSchema inputSchema) => new Mapper(this, inputSchema, null).OutputSchema;

    /// <summary>A row mapper (one network run per row), for prediction engines.</summary>
    /// <param name="inputSchema">The input schema.</param>
    public IRowToRowMapper GetRowToRowMapper(DataViewSchema inputSchema) => new Mapper(this, inputSchema, null).AsRowToRowMapper();

    /// <summary>Lazily adds the attribution column, computing rows in batches as they are read in order.</summary>
    /// <param name="input">Rows with the image and position columns.</param>
    public IDataView Transform(IDataView input)
    {
        ArgumentNullException.ThrowIfNull(input);
        return new Mapper(this, input.Schema, input).Apply(input);
    }

    /// <summary>Releases the ONNX Runtime session.</summary>
    public void Dispose() => _engine.Dispose();

    /// <summary>Not supported: use <c>mlContext.Model.SaveAtlas(...)</c>.</summary>
    void ICanSaveModel.Save(ModelSaveContext ctx)
        => throw new NotSupportedException("AttributionTransformer is saved with mlContext.Model.SaveAtlas(...), not mlContext.Model.Save(...).");

    void IAtlasPersistable.SaveState(AtlasStateWriter writer)
    {
        var model = _options.Model!;
        writer.WriteJson("attribution.json", new State
        {
            BuiltInModel = model.BuiltInName,
            Layer = _options.Layer,
            LogitsTensorName = _options.LogitsTensorName,
            OutputColumnName = _options.OutputColumnName,
            InputColumnName = _options.InputColumnName,
            PositionColumnName = _options.PositionColumnName,
            ActivationColumnName = _options.ActivationColumnName,
            Method = _options.Method.ToString(),
            ClassNames = ClassNames.ToArray(),
            BatchSize = _options.BatchSize,
            Preprocessing = model.Preprocessing,
            Session = _options.Session,
        });
        model.WriteState(writer);
    }

    internal static ITransformer LoadState(MLContext mlContext, AtlasStateReader reader)
    {
        var s = reader.ReadJson<State>("attribution.json");
        ActivationModel model = ActivationModel.ReadState(reader, s.BuiltInModel, s.Preprocessing);
        return new AttributionTransformer(mlContext, new AttributionEstimator.Options
        {
            Model = model,
            Layer = s.Layer,
            LogitsTensorName = s.LogitsTensorName,
            OutputColumnName = s.OutputColumnName,
            InputColumnName = s.InputColumnName,
            PositionColumnName = s.PositionColumnName,
            ActivationColumnName = s.ActivationColumnName,
            Method = s.Method is null ? AttributionMethod.Auto : Enum.Parse<AttributionMethod>(s.Method),
            ClassNames = s.ClassNames,
            BatchSize = s.BatchSize,
            Session = s.Session ?? new OnnxSessionOptions(),
        });
    }

    private sealed class State
    {
        public string? BuiltInModel { get; set; }
        public string Layer { get; set; } = "";
        public string? LogitsTensorName { get; set; }
        public string OutputColumnName { get; set; } = "";
        public string InputColumnName { get; set; } = "";
        public string PositionColumnName { get; set; } = "";
        public string? ActivationColumnName { get; set; }
        public string? Method { get; set; }
        public string[]? ClassNames { get; set; }
        public int BatchSize { get; set; }
        public ImagePreprocessing? Preprocessing { get; set; }
        public OnnxSessionOptions? Session { get; set; }
    }

    private sealed class Mapper : AppendedColumnsMapper
    {
        private readonly AttributionTransformer _parent;
        private readonly IDataView? _source;
        private readonly DataViewSchema.Column _image;
        private readonly DataViewSchema.Column _position;
        private readonly DataViewSchema.Column _activation;
        private readonly bool _isImage;
        private readonly bool _isPath;

        public Mapper(AttributionTransformer parent, DataViewSchema schema, IDataView? source) : base(schema)
        {
            _parent = parent;
            _source = source;
            var o = parent._options;
            if (parent.UsesClosedForm)
            {
                _activation = SchemaShapes.FloatVector(schema, o.ActivationColumnName!, "the activations attributed", parent._engine.Layer.Channels);
                return;
            }
            _image = schema.GetColumnOrNull(o.InputColumnName)
                ?? throw new ArgumentOutOfRangeException(nameof(schema), $"The image column '{o.InputColumnName}' is missing.");
            _isImage = _image.Type is ImageDataViewType;
            _isPath = _image.Type is TextDataViewType;
            if (!_isImage && !_isPath && !(_image.Type is VectorDataViewType v && v.ItemType == NumberDataViewType.Single))
                throw new ArgumentOutOfRangeException(nameof(schema), $"Column '{o.InputColumnName}' is {_image.Type}; image file paths, an image or a float vector of planar pixels is needed.");
            _position = schema.GetColumnOrNull(o.PositionColumnName)
                ?? throw new ArgumentOutOfRangeException(nameof(schema), $"The position column '{o.PositionColumnName}' is missing; it comes from ExtractActivations.");
            if (_position.Type is not VectorDataViewType { ItemType: var it, Size: 2 } || it != NumberDataViewType.Int32)
                throw new ArgumentOutOfRangeException(nameof(schema), $"Column '{o.PositionColumnName}' is {_position.Type}; a vector of 2 Int32 ([y, x]) is needed.");
        }

        protected override IReadOnlyList<DataViewSchema.DetachedColumn> AddedColumns
        {
            get
            {
                var names = _parent.ClassNames;
                var annotations = new DataViewSchema.Annotations.Builder();
                annotations.Add("SlotNames", new VectorDataViewType(TextDataViewType.Instance, names.Count),
                    (ref VBuffer<ReadOnlyMemory<char>> v) =>
                    {
                        var editor = VBufferEditor.Create(ref v, names.Count);
                        for (int i = 0; i < names.Count; i++) editor.Values[i] = names[i].AsMemory();
                        v = editor.Commit();
                    });
                return [new(_parent.OutputColumnName, new VectorDataViewType(NumberDataViewType.Single, names.Count), annotations.ToAnnotations())];
            }
        }

        protected override IEnumerable<DataViewSchema.Column> Dependencies(int addedIndex) =>
            _parent.UsesClosedForm ? [_activation] : [_image, _position];

        /// <summary>(W_k . h) / (H W) from the row's activation vector: no network run.</summary>
        private ValueGetter<VBuffer<float>> ClosedFormGetter(DataViewRow input)
        {
            var head = _parent._engine.LinearHead!;
            var activations = input.GetGetter<VBuffer<float>>(_activation);
            VBuffer<float> h = default;
            var dense = new float[head.Channels];
            return (ref VBuffer<float> dst) =>
            {
                activations(ref h);
                h.CopyTo(dense);
                var editor = VBufferEditor.Create(ref dst, head.ClassCount);
                head.Attribute(dense, editor.Values);
                dst = editor.Commit();
            };
        }

        /// <summary>Reads one row's pixels into a slot and its position.</summary>
        private Func<int, Span<float>, string?> Reader(DataViewRow row, int[] positions)
        {
            var pixels = Pixels(row);
            var positionGetter = row.GetGetter<VBuffer<int>>(_position);
            VBuffer<int> pos = default;
            return (slot, dst) =>
            {
                positionGetter(ref pos);
                positions[2 * slot] = pos.GetItemOrDefault(0);
                positions[2 * slot + 1] = pos.GetItemOrDefault(1);
                return pixels(dst);
            };
        }

        /// <summary>Converts one row's image (an image, a file path or planar pixels) into a slot; returns null or why it could not.</summary>
        private Func<Span<float>, string?> Pixels(DataViewRow row)
        {
            var converter = _parent._engine.Converter;
            if (_isImage)
            {
                var getter = row.GetGetter<MLImage>(_image);
                MLImage image = null!;
                return dst =>
                {
                    getter(ref image);
                    return converter.FromImage(image, dst);
                };
            }
            if (_isPath)
            {
                var getter = row.GetGetter<ReadOnlyMemory<char>>(_image);
                ReadOnlyMemory<char> path = default;
                return dst =>
                {
                    getter(ref path);
                    return ImageFileDecoder.Decode(path.ToString(), converter, dst);
                };
            }
            var vectorGetter = row.GetGetter<VBuffer<float>>(_image);
            VBuffer<float> pixels = default;
            return dst =>
            {
                vectorGetter(ref pixels);
                return converter.FromPlanarPixels(pixels.DenseValues().ToArray(), dst);
            };
        }

        protected override Delegate CreateGetter(DataViewRow input, int addedIndex)
        {
            if (_parent.UsesClosedForm)
                return ClosedFormGetter(input);
            var engine = _parent._engine;
            int k = engine.ClassCount, length = engine.Converter.Length;
            int batchSize = _source is not null && input is DataViewRowCursor ? _parent._options.BatchSize : 1;
            var pixels = new float[batchSize * length];
            var positions = new int[2 * batchSize];
            var results = new float[batchSize * k];
            long cachedStart = -1;
            int cachedCount = 0;
            var inputId = input.GetIdGetter();
            var readInput = Reader(input, positions);
            DataViewRowCursor? ahead = null;
            Func<int, Span<float>, string?>? readAhead = null;
            ValueGetter<DataViewRowId>? aheadId = null;
            string columnName = _parent._options.InputColumnName;

            void Fail(long row, string reason) =>
                throw new InvalidOperationException($"Row {row}, column '{columnName}': {reason}.");

            void ComputeSingle(long row)
            {
                if (readInput(0, pixels.AsSpan(0, length)) is { } error) Fail(row, error);
                _parent._options.CancellationToken.ThrowIfCancellationRequested();
                engine.Run(pixels, positions, 1, results);
                cachedStart = -1;
                cachedCount = 0;
            }

            bool ComputeBatch(long row)
            {
                // Read ahead on a cursor of our own over the same data, starting at this row.
                if (ahead is null || ahead.Position >= row)
                {
                    ahead?.Dispose();
                    ahead = _source!.GetRowCursor([_image, _position]);
                    readAhead = Reader(ahead, positions);
                    aheadId = ahead.GetIdGetter();
                }
                while (ahead.Position < row)
                    if (!ahead.MoveNext()) return false;
                DataViewRowId a = default, b = default;
                aheadId!(ref a);
                inputId(ref b);
                if (!a.Equals(b)) return false; // not the same row sequence (e.g. a cursor set): compute singly
                int count = 0;
                do
                {
                    if (readAhead!(count, pixels.AsSpan(count * length, length)) is { } error) Fail(row + count, error);
                    count++;
                }
                while (count < batchSize && ahead.MoveNext());
                _parent._options.CancellationToken.ThrowIfCancellationRequested();
                engine.Run(pixels, positions, count, results);
                cachedStart = row;
                cachedCount = count;
                return true;
            }

            return (ValueGetter<VBuffer<float>>)((ref VBuffer<float> dst) =>
            {
                long row = input.Position;
                int offset;
                if (batchSize > 1 && row >= cachedStart && row < cachedStart + cachedCount)
                    offset = (int)(row - cachedStart);
                else if (batchSize > 1 && ComputeBatch(row))
                    offset = 0;
                else
                {
                    ComputeSingle(row);
                    offset = 0;
                }
                var editor = VBufferEditor.Create(ref dst, k);
                results.AsSpan(offset * k, k).CopyTo(editor.Values);
                dst = editor.Commit();
            });
        }
    }
}
