using System.Collections.Concurrent;
using Microsoft.ML.ActivationAtlas.Onnx;
using Microsoft.ML.ActivationAtlas.Persistence;
using Microsoft.ML.Data;
using Microsoft.ML.Transforms.Image;

namespace Microsoft.ML.ActivationAtlas.Extraction;

/// <summary>
/// Adds activation columns (one float vector per requested layer) and a position column to a data view. Rows are
/// read lazily and run through ONNX Runtime a batch at a time; with <see cref="ActivationSampling.AllPositions"/>
/// every input row becomes H x W output rows. Works inside a <c>PredictionEngine</c> (one image per call) for every
/// sampling but <see cref="ActivationSampling.AllPositions"/>.
/// </summary>
[AtlasPersistence("activation-extraction")]
public sealed class ActivationExtractingTransformer : ITransformer, IAtlasPersistable, IDisposable
{
    /// <summary>The annotation kind holding the layer's tensor name on each activation column (text).</summary>
    public const string LayerAnnotationKind = "ActivationAtlas.Layer";

    private readonly ActivationExtractingEstimator.Options _options;
    private readonly ConcurrentQueue<SkippedRow> _skipped = new();
    private long _skippedCount;

    internal ActivationExtractingTransformer(MLContext mlContext, ActivationExtractingEstimator.Options options, ActivationEngine? engine = null)
    {
        ArgumentNullException.ThrowIfNull(mlContext);
        _options = options;
        var model = options.Model!;
        Engine = engine ?? new ActivationEngine(model, options.Layers, options.Preprocessing ?? model.Preprocessing,
            options.ImageWidth, options.ImageHeight, options.Sampling, options.Seed, options.Margin, options.Session, options.Tokens, options.FirstRowIndex);
        OutputColumnNames = options.OutputColumnNames?.ToArray()
            ?? (Engine.Layers.Length == 1 ? [AtlasColumnNames.Activation] : Engine.Layers.Select(l => l.FriendlyName ?? l.Name).ToArray());
        var all = OutputColumnNames.Append(options.PositionColumnName).ToList();
        if (options.SpatialMeanColumnName is { } mean)
            all.Add(mean);
        if (all.Distinct(StringComparer.Ordinal).Count() != all.Count)
            throw new ArgumentException($"Output column names must differ from each other and from the position column: {string.Join(", ", all)}.");
    }

    internal ActivationEngine Engine { get; }

    /// <summary>
    /// A copy of this transformer for a part of a larger dataset whose first row is row <paramref name="firstRowIndex"/>
    /// of the whole: each row gets the random position it gets in one pass over the whole dataset. The copy shares this
    /// transformer's ONNX Runtime session (no second copy of the network in memory), so keep this transformer undisposed
    /// while the copy is in use; disposing the copy leaves the session open.
    /// </summary>
    /// <param name="firstRowIndex">The index, in the whole dataset, of the part's first row.</param>
    public ActivationExtractingTransformer StartingAtRow(long firstRowIndex)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(firstRowIndex);
        var options = _options.Clone();
        options.FirstRowIndex = firstRowIndex;
        return new ActivationExtractingTransformer(new MLContext(), options,
            Engine.StartingAtRow(options.Sampling, options.Seed, options.Margin, firstRowIndex));
    }

    internal ActivationExtractingEstimator.Options Settings => _options;

    /// <summary>The resolved layers (tensor name, friendly name, op, shape), in the order of <see cref="OutputColumnNames"/>.</summary>
    public IReadOnlyList<OnnxLayerInfo> Layers => Engine.Layers;

    /// <summary>The activation column of each layer.</summary>
    public IReadOnlyList<string> OutputColumnNames { get; }

    /// <summary>The image (or pixel vector) column read.</summary>
    public string InputColumnName => _options.InputColumnName;

    /// <summary>The column holding the first layer's spatial mean for every row, or null when there is none.</summary>
    public string? SpatialMeanColumnName => _options.SpatialMeanColumnName;

    /// <summary>The position column written.</summary>
    public string PositionColumnName => _options.PositionColumnName;

    /// <summary>The sampling mode.</summary>
    public ActivationSampling Sampling => _options.Sampling;

    /// <summary>Images per ONNX Runtime call.</summary>
    public int BatchSize => _options.BatchSize;

    /// <summary>The execution provider the session runs on (<c>CPU</c> or <c>CUDA</c>).</summary>
    public string ExecutionProvider => Engine.ExecutionProvider;

    /// <summary>How many input rows were skipped (with <see cref="BadRowHandling.Skip"/>) by all cursors so far.</summary>
    public long SkippedRowCount => Interlocked.Read(ref _skippedCount);

    /// <summary>The first skipped rows (up to 1,000) with the reason, for reports.</summary>
    public IReadOnlyList<SkippedRow> SkippedRows => _skipped.ToArray();

    /// <summary>True unless the sampling is <see cref="ActivationSampling.AllPositions"/> (which changes the row count).</summary>
    public bool IsRowToRowMapper => _options.Sampling != ActivationSampling.AllPositions;

    /// <summary>The output schema: the input columns, then the position and the activation columns (with slot names and the layer name as annotations).</summary>
    /// <param name="inputSchema">The input schema.</param>
    public DataViewSchema GetOutputSchema(DataViewSchema inputSchema)
    {
        ArgumentNullException.ThrowIfNull(inputSchema);
        CheckInput(inputSchema);
        return ActivationSchema.Build(inputSchema, this);
    }

    /// <summary>A lazy view: activations are computed as a cursor moves, one batch at a time.</summary>
    /// <param name="input">The input data.</param>
    public IDataView Transform(IDataView input)
    {
        ArgumentNullException.ThrowIfNull(input);
        return new ActivationDataView(this, input);
    }

    /// <summary>A row mapper for <c>PredictionEngine</c> (one image per call).</summary>
    /// <param name="inputSchema">The input schema.</param>
    /// <exception cref="InvalidOperationException">The sampling is <see cref="ActivationSampling.AllPositions"/>.</exception>
    public IRowToRowMapper GetRowToRowMapper(DataViewSchema inputSchema)
    {
        ArgumentNullException.ThrowIfNull(inputSchema);
        if (!IsRowToRowMapper)
            throw new InvalidOperationException("AllPositions sampling turns one image into many rows, so it cannot map rows one-to-one (PredictionEngine); use Transform.");
        return new ActivationRowMapper(this, inputSchema);
    }

    /// <summary>Not supported: ML.NET's save format is internal. Use <c>mlContext.Model.SaveAtlas(...)</c>.</summary>
    /// <param name="ctx">Unused.</param>
    void ICanSaveModel.Save(ModelSaveContext ctx) =>
        throw new NotSupportedException("Activation-atlas transformers are saved with mlContext.Model.SaveAtlas(...) and loaded with mlContext.Model.LoadAtlas(...).");

    /// <summary>Releases the ONNX Runtime session.</summary>
    public void Dispose() => Engine.Dispose();

    void IAtlasPersistable.SaveState(AtlasStateWriter writer)
    {
        var model = _options.Model!;
        var state = new ExtractionState
        {
            BuiltInModel = model.BuiltInName,
            Layers = _options.Layers,
            OutputColumnNames = OutputColumnNames.ToArray(),
            InputColumnName = _options.InputColumnName,
            PositionColumnName = _options.PositionColumnName,
            SpatialMeanColumnName = _options.SpatialMeanColumnName,
            Sampling = _options.Sampling.ToString(),
            Seed = _options.Seed,
            FirstRowIndex = _options.FirstRowIndex,
            Margin = _options.Margin,
            Tokens = _options.Tokens,
            BatchSize = _options.BatchSize,
            Preprocessing = _options.Preprocessing ?? model.Preprocessing,
            ImageWidth = _options.ImageWidth,
            ImageHeight = _options.ImageHeight,
            BadRows = _options.BadRows.ToString(),
            ImagePathColumnName = _options.ImagePathColumnName,
            Session = _options.Session,
        };
        writer.WriteJson("extraction.json", state);
        model.WriteState(writer);
    }

    internal static ITransformer LoadState(MLContext mlContext, AtlasStateReader reader)
    {
        var s = reader.ReadJson<ExtractionState>("extraction.json");
        ActivationModel model = ActivationModel.ReadState(reader, s.BuiltInModel, s.Preprocessing);
        var options = new ActivationExtractingEstimator.Options
        {
            Model = model,
            Layers = s.Layers,
            OutputColumnNames = s.OutputColumnNames,
            InputColumnName = s.InputColumnName,
            PositionColumnName = s.PositionColumnName,
            SpatialMeanColumnName = s.SpatialMeanColumnName,
            Sampling = Enum.Parse<ActivationSampling>(s.Sampling),
            Seed = s.Seed,
            FirstRowIndex = s.FirstRowIndex,
            Margin = s.Margin,
            Tokens = s.Tokens,
            BatchSize = s.BatchSize,
            Preprocessing = s.Preprocessing,
            ImageWidth = s.ImageWidth,
            ImageHeight = s.ImageHeight,
            BadRows = Enum.Parse<BadRowHandling>(s.BadRows),
            ImagePathColumnName = s.ImagePathColumnName,
            Session = s.Session ?? new OnnxSessionOptions(),
        };
        return new ActivationExtractingTransformer(mlContext, options);
    }

    /// <summary>The number of floats of one pixel-vector input: 3 x H x W.</summary>
    internal int PixelCount => Engine.Converter.Length;

    internal void RecordSkip(long row, string? path, string reason)
    {
        if (Interlocked.Increment(ref _skippedCount) <= 1000)
            _skipped.Enqueue(new SkippedRow(row, path, reason));
    }

    internal DataViewSchema.Column InputColumn(DataViewSchema schema)
    {
        var col = schema.GetColumnOrNull(_options.InputColumnName)
            ?? throw new ArgumentException($"Input column '{_options.InputColumnName}' is not in the data; columns: {string.Join(", ", schema.Where(c => !c.IsHidden).Select(c => c.Name))}.");
        return col;
    }

    internal DataViewSchema.Column? PathColumn(DataViewSchema schema)
    {
        if (_options.ImagePathColumnName is null)
            return null;
        var col = schema.GetColumnOrNull(_options.ImagePathColumnName)
            ?? throw new ArgumentException($"Image path column '{_options.ImagePathColumnName}' is not in the data.");
        if (col.Type is not TextDataViewType)
            throw new ArgumentException($"Image path column '{_options.ImagePathColumnName}' is {col.Type}, not text.");
        return col;
    }

    private void CheckInput(DataViewSchema schema)
    {
        var col = InputColumn(schema);
        switch (col.Type)
        {
            case ImageDataViewType image:
                if (image.Height > 0 && image.Width > 0 && (image.Height != Engine.Converter.Height || image.Width != Engine.Converter.Width))
                    throw new ArgumentException($"Input column '{col.Name}' holds {image.Width}x{image.Height} images but the network takes {Engine.Converter.Width}x{Engine.Converter.Height}; add mlContext.Transforms.ResizeImages(\"{col.Name}\", {Engine.Converter.Width}, {Engine.Converter.Height}) before it.");
                break;
            case TextDataViewType:
                break;
            case VectorDataViewType { ItemType: var item } v when item == NumberDataViewType.Single:
                if (v.Size != 0 && v.Size != PixelCount)
                    throw new ArgumentException($"Input column '{col.Name}' holds {v.Size} floats but the network takes 3x{Engine.Converter.Height}x{Engine.Converter.Width} = {PixelCount} planar RGB pixel values.");
                break;
            default:
                throw new ArgumentException($"Input column '{col.Name}' is {col.Type}; expected image file paths (text), an image (LoadImages/ResizeImages) or a float vector of {PixelCount} planar RGB pixel values.");
        }
        PathColumn(schema);
    }
}

/// <summary>A row left out with <see cref="BadRowHandling.Skip"/>.</summary>
/// <param name="Row">The input row's index.</param>
/// <param name="ImagePath">The image file, when an image path column is known.</param>
/// <param name="Reason">Why the row was skipped.</param>
public sealed record SkippedRow(long Row, string? ImagePath, string Reason);

internal sealed class ExtractionState
{
    public string? BuiltInModel { get; set; }
    public string[] Layers { get; set; } = [];
    public string[]? OutputColumnNames { get; set; }
    public string InputColumnName { get; set; } = AtlasColumnNames.Image;
    public string PositionColumnName { get; set; } = AtlasColumnNames.Position;
    public string? SpatialMeanColumnName { get; set; }
    public string Sampling { get; set; } = "";
    public int Seed { get; set; }
    public long FirstRowIndex { get; set; }
    public int Margin { get; set; }
    public TokenLayout? Tokens { get; set; }
    public int BatchSize { get; set; }
    public ImagePreprocessing? Preprocessing { get; set; }
    public int ImageWidth { get; set; }
    public int ImageHeight { get; set; }
    public string BadRows { get; set; } = "";
    public string? ImagePathColumnName { get; set; }
    public OnnxSessionOptions? Session { get; set; }
}
