using System.Runtime.InteropServices;
using Microsoft.ML.ActivationAtlas.Common;
using Microsoft.ML.ActivationAtlas.Extraction;
using Microsoft.ML.ActivationAtlas.Inversion.Network;
using Microsoft.ML.ActivationAtlas.Inversion.Objectives;
using Microsoft.ML.ActivationAtlas.Inversion.Optimization;
using Microsoft.ML.ActivationAtlas.Inversion.Parameterization;
using Microsoft.ML.ActivationAtlas.Onnx;
using Microsoft.ML.ActivationAtlas.Persistence;
using Microsoft.ML.Data;
using Microsoft.ML.Transforms.Image;

namespace Microsoft.ML.ActivationAtlas.Inversion;

/// <summary>
/// Renders an icon (an <c>MLImage</c>) and its fidelity for every direction vector of the input column. Icons are
/// optimised in batches when <see cref="Transform"/> is called and remembered by direction, so the returned view
/// reads them back without recomputing; rows that reach a prediction engine are rendered on demand.
/// </summary>
[AtlasPersistence("feature-inversion")]
public sealed class FeatureInversionTransformer : ITransformer, IAtlasPersistable, IDisposable
{
    private readonly MLContext _mlContext;
    private readonly FeatureInversionEstimator.Options _options;
    private readonly Dictionary<string, RenderedIcon> _cache = new(StringComparer.Ordinal);
    private readonly object _gate = new();
    private FeatureIconRenderer? _renderer;

    internal FeatureInversionTransformer(MLContext mlContext, FeatureInversionEstimator.Options options, Whitening? whitening)
    {
        _mlContext = mlContext;
        _options = options;
        Whitening = whitening;
    }

    /// <summary>The fitted whitening, or null.</summary>
    public Whitening? Whitening { get; }

    /// <summary>The direction column read.</summary>
    public string InputColumnName => _options.InputColumnName;

    /// <summary>The icon column written.</summary>
    public string OutputColumnName => _options.OutputColumnName;

    /// <summary>The fidelity column written, or null.</summary>
    public string? FidelityColumnName => _options.FidelityColumnName;

    /// <summary>Always true: rows map one to one.</summary>
    public bool IsRowToRowMapper => true;

    /// <summary>The input schema with the icon (and fidelity) columns.</summary>
    public DataViewSchema GetOutputSchema(DataViewSchema inputSchema) => new Mapper(this, inputSchema).OutputSchema;

    /// <summary>A row mapper that renders each row's icon on demand, for prediction engines.</summary>
    public IRowToRowMapper GetRowToRowMapper(DataViewSchema inputSchema) => new Mapper(this, inputSchema).AsRowToRowMapper();

    /// <summary>Renders the icons of every row of <paramref name="input"/> (in batches) and returns the view with them.</summary>
    public IDataView Transform(IDataView input)
    {
        ArgumentNullException.ThrowIfNull(input);
        var mapper = new Mapper(this, input.Schema);
        var matrix = SchemaShapes.ReadFloatMatrix(input, mapper.Direction, out int rows, out int size, _options.CancellationToken);
        var directions = new List<float[]>(rows);
        for (int i = 0; i < rows; i++)
            directions.Add(matrix.AsSpan(i * size, size).ToArray());
        RenderAll(directions);
        return mapper.Apply(input);
    }

    /// <summary>Renders (and remembers) the icons of directions not rendered yet.</summary>
    internal IReadOnlyList<RenderedIcon> RenderAll(IReadOnlyList<float[]> directions)
    {
        lock (_gate)
        {
            var missing = new List<float[]>();
            var keys = new HashSet<string>(StringComparer.Ordinal);
            for (int row = 0; row < directions.Count; row++)
            {
                string key = Key(directions[row]);
                if (!_cache.ContainsKey(key) && keys.Add(key))
                {
                    ActivationObjective.Validate(directions[row], Renderer().LayerChannels, $"direction in column '{_options.InputColumnName}' (row {row}) for layer '{_options.Layer}'");
                    missing.Add(directions[row]);
                }
            }
            if (missing.Count > 0)
            {
                var icons = Renderer().Render(missing, null, _options.Progress, _options.CancellationToken);
                for (int i = 0; i < missing.Count; i++)
                    _cache[Key(missing[i])] = icons[i];
            }
            return directions.Select(d => _cache[Key(d)]).ToList();
        }
    }

    private FeatureIconRenderer Renderer() => _renderer ??= new FeatureIconRenderer(_mlContext, _options, Whitening);

    private static string Key(ReadOnlySpan<float> direction) => Convert.ToBase64String(MemoryMarshal.AsBytes(direction));

    /// <summary>Not supported: ML.NET's model format is internal; use <c>mlContext.Model.SaveAtlas(...)</c>.</summary>
    void ICanSaveModel.Save(ModelSaveContext ctx)
        => throw new NotSupportedException("FeatureInversionTransformer is saved with mlContext.Model.SaveAtlas(...), not mlContext.Model.Save(...).");

    void IAtlasPersistable.SaveState(AtlasStateWriter writer)
    {
        if (_options.CustomTransforms is not null || _options.CustomObjective is not null)
            throw new NotSupportedException("A feature inversion stage with CustomTransforms or CustomObjective cannot be saved: the file holds settings, " +
                "not code. Save the pipeline without the stage and add the stage again after loading.");
        var model = _options.Model!;
        writer.WriteJson("inversion.json", new InversionState
        {
            BuiltInModel = model.BuiltInName,
            Preprocessing = model.Preprocessing,
            Layer = _options.Layer,
            OutputColumnName = _options.OutputColumnName,
            InputColumnName = _options.InputColumnName,
            FidelityColumnName = _options.FidelityColumnName,
            Size = _options.Size,
            NetworkInputSize = _options.NetworkInputSize,
            Steps = _options.Steps,
            Attempts = _options.Attempts,
            BatchSize = _options.BatchSize,
            Seed = _options.Seed,
            LearningRate = _options.LearningRate,
            LearningRateSchedule = _options.LearningRateSchedule.ToString(),
            FinalLearningRateFraction = _options.FinalLearningRateFraction,
            EvaluationInterval = _options.EvaluationInterval,
            EarlyStoppingPatience = _options.EarlyStoppingPatience,
            EarlyStoppingTolerance = _options.EarlyStoppingTolerance,
            WarmStartSteps = _options.WarmStartSteps,
            Basis = _options.Basis.ToString(),
            DecorrelateColors = _options.DecorrelateColors,
            Transforms = _options.Transforms.ToString(),
            Objective = _options.Objective.ToString(),
            CosinePower = _options.CosinePower,
            CosineFloor = _options.CosineFloor,
            Whitening = Whitening?.Kind.ToString() ?? nameof(WhiteningKind.None),
            WhiteningColumnName = _options.WhiteningColumnName,
            Session = _options.Session,
            Tokens = _options.Tokens,
            Token = _options.Token,
        });
        model.WriteState(writer);
        if (_options.MacoMagnitude is { } magnitude)
            writer.WriteFloats("maco-magnitude", magnitude);
        if (Whitening is not null)
        {
            writer.WriteFloats("whitening-matrix", Whitening.Matrix);
            writer.WriteFloats("whitening-mean", Whitening.Mean);
        }
    }

    internal static ITransformer LoadState(MLContext mlContext, AtlasStateReader reader)
    {
        var s = reader.ReadJson<InversionState>("inversion.json");
        ActivationModel model = ActivationModel.ReadState(reader, s.BuiltInModel, s.Preprocessing);
        var options = new FeatureInversionEstimator.Options
        {
            Model = model,
            Layer = s.Layer,
            OutputColumnName = s.OutputColumnName,
            InputColumnName = s.InputColumnName,
            FidelityColumnName = s.FidelityColumnName,
            Size = s.Size,
            NetworkInputSize = s.NetworkInputSize,
            Steps = s.Steps,
            Attempts = s.Attempts,
            BatchSize = s.BatchSize,
            Seed = s.Seed,
            LearningRate = s.LearningRate,
            // States saved before the schedule and early stopping existed read as lucid's constant rate, no early stop.
            LearningRateSchedule = s.LearningRateSchedule is null ? LearningRateSchedule.Constant : Enum.Parse<LearningRateSchedule>(s.LearningRateSchedule),
            FinalLearningRateFraction = s.FinalLearningRateFraction ?? 0.1,
            EvaluationInterval = s.EvaluationInterval ?? s.Steps,
            EarlyStoppingPatience = s.EarlyStoppingPatience,
            EarlyStoppingTolerance = s.EarlyStoppingTolerance ?? 0.01,
            WarmStartSteps = s.WarmStartSteps,
            Basis = Enum.Parse<ImageBasis>(s.Basis),
            DecorrelateColors = s.DecorrelateColors,
            Transforms = Enum.Parse<IconTransforms>(s.Transforms),
            Objective = Enum.Parse<ObjectiveKind>(s.Objective),
            CosinePower = s.CosinePower,
            CosineFloor = s.CosineFloor,
            Whitening = Enum.Parse<WhiteningKind>(s.Whitening),
            WhiteningColumnName = s.WhiteningColumnName,
            Session = s.Session,
            Tokens = s.Tokens,
            Token = s.Token,
            MacoMagnitude = reader.Contains("maco-magnitude") ? reader.ReadFloats("maco-magnitude") : null,
        };
        options.Validate();
        Whitening? whitening = null;
        if (options.Whitening != WhiteningKind.None)
        {
            var mean = reader.ReadFloats("whitening-mean");
            whitening = Objectives.Whitening.FromMatrix(options.Whitening, mean.Length, reader.ReadFloats("whitening-matrix"), mean);
        }
        return new FeatureInversionTransformer(mlContext, options, whitening);
    }

    /// <summary>Releases the ONNX Runtime sessions.</summary>
    public void Dispose()
    {
        lock (_gate)
        {
            _renderer?.Dispose();
            _renderer = null;
        }
    }

    private sealed class InversionState
    {
        public string? BuiltInModel { get; set; }
        public ImagePreprocessing? Preprocessing { get; set; }
        public string Layer { get; set; } = "";
        public string OutputColumnName { get; set; } = "";
        public string InputColumnName { get; set; } = "";
        public string? FidelityColumnName { get; set; }
        public int Size { get; set; }
        public int? NetworkInputSize { get; set; }
        public int Steps { get; set; }
        public int Attempts { get; set; }
        public int BatchSize { get; set; }
        public int Seed { get; set; }
        public double LearningRate { get; set; }
        public string? LearningRateSchedule { get; set; }
        public double? FinalLearningRateFraction { get; set; }
        public int? EvaluationInterval { get; set; }
        public int EarlyStoppingPatience { get; set; }
        public double? EarlyStoppingTolerance { get; set; }
        public int? WarmStartSteps { get; set; }
        public string Basis { get; set; } = "";
        public bool DecorrelateColors { get; set; }
        public string Transforms { get; set; } = "";
        public string Objective { get; set; } = "";
        public double CosinePower { get; set; }
        public double CosineFloor { get; set; }
        public string Whitening { get; set; } = "";
        public string? WhiteningColumnName { get; set; }
        public OnnxSessionOptions? Session { get; set; }
        public TokenLayout? Tokens { get; set; }
        public int? Token { get; set; }
    }

    private sealed class Mapper : AppendedColumnsMapper
    {
        private readonly FeatureInversionTransformer _parent;
        private readonly List<DataViewSchema.DetachedColumn> _added = [];

        public Mapper(FeatureInversionTransformer parent, DataViewSchema inputSchema)
            : base(inputSchema)
        {
            _parent = parent;
            Direction = SchemaShapes.FloatVector(inputSchema, parent._options.InputColumnName, "directions");
            _added.Add(new DataViewSchema.DetachedColumn(parent._options.OutputColumnName, new ImageDataViewType(parent._options.Size, parent._options.Size)));
            if (parent._options.FidelityColumnName is { } f)
                _added.Add(new DataViewSchema.DetachedColumn(f, NumberDataViewType.Single));
        }

        public DataViewSchema.Column Direction { get; }

        protected override IReadOnlyList<DataViewSchema.DetachedColumn> AddedColumns => _added;

        protected override IEnumerable<DataViewSchema.Column> Dependencies(int addedIndex) => [Direction];

        protected override Delegate CreateGetter(DataViewRow input, int addedIndex)
        {
            var directionGetter = input.GetGetter<VBuffer<float>>(Direction);
            VBuffer<float> buffer = default;
            RenderedIcon Current()
            {
                directionGetter(ref buffer);
                var dense = new float[buffer.Length];
                buffer.CopyTo(dense);
                return _parent.RenderAll([dense])[0];
            }
            if (addedIndex == 0)
                return (ValueGetter<MLImage>)((ref MLImage value) => value = IconImages.ToMLImage(Current()));
            return (ValueGetter<float>)((ref float value) => value = (float)Current().Fidelity);
        }
    }
}
