using Microsoft.ML.ActivationAtlas.Common;
using Microsoft.ML.ActivationAtlas.Onnx;
using Microsoft.ML.Data;

namespace Microsoft.ML.ActivationAtlas.Extraction;

/// <summary>
/// Adds hidden-layer activations of an ONNX vision network as vector columns, one per requested layer, plus the
/// sampled position. Created by <see cref="ActivationExtractionCatalog.ExtractActivations(TransformsCatalog, ActivationExtractingEstimator.Options)"/>.
/// Nothing is learned: fitting only checks the input schema and compiles the network.
/// </summary>
public sealed class ActivationExtractingEstimator : IEstimator<ActivationExtractingTransformer>
{
    private readonly MLContext _mlContext;
    private readonly Options _options;
    private ActivationExtractingTransformer? _compiled;

    /// <summary>Settings of the extraction. Defaults are documented on each member.</summary>
    public sealed class Options
    {
        /// <summary>The network (required): <see cref="ActivationModel.FromFile"/> or <see cref="PretrainedModels.ResNet18"/>.</summary>
        public ActivationModel? Model { get; set; }

        /// <summary>Layers to extract (required): tensor names (e.g. <c>ReLU393_Output_0</c>) or friendly names (e.g. <c>inception4c</c>); all must be 4-D.</summary>
        public string[] Layers { get; set; } = [];

        /// <summary>
        /// Output column per layer. Default: <see cref="AtlasColumnNames.Activation"/> (<c>Activation</c>) for a single layer; for several layers each
        /// layer's friendly name (or tensor name).
        /// </summary>
        public string[]? OutputColumnNames { get; set; }

        /// <summary>
        /// The input column. Default <c>Image</c>. One of: image file paths (text; decoded, center-cropped and resized
        /// here with SkiaSharp, in parallel per batch: the fastest route); an image (from <c>LoadImages</c>/<c>ResizeImages</c>,
        /// sized as the network expects); or a float vector of planar RGB pixel values 0..255 [3, H, W].
        /// </summary>
        public string InputColumnName { get; set; } = AtlasColumnNames.Image;

        /// <summary>
        /// The output column holding the position [y, x] of each row on the first layer's grid (a token layer's patch
        /// grid; [-1, -1] for <see cref="ActivationSampling.SpatialMean"/>, [-2, -2] for <see cref="ActivationSampling.ClassToken"/>).
        /// Default <c>Position</c>.
        /// </summary>
        public string PositionColumnName { get; set; } = AtlasColumnNames.Position;

        /// <summary>
        /// An extra output column holding the spatial mean of the first layer's activations over all its positions,
        /// for every row, from the same network run (e.g. the features of a linear head trained on the layer while the
        /// activation column keeps one random position). Default null: no such column.
        /// </summary>
        public string? SpatialMeanColumnName { get; set; }

        /// <summary>Which position(s) become rows. Default <see cref="ActivationSampling.RandomPosition"/>.</summary>
        public ActivationSampling Sampling { get; set; } = ActivationSampling.RandomPosition;

        /// <summary>Seed of <see cref="ActivationSampling.RandomPosition"/>; a row's position depends only on the seed and the row's index. Default 0.</summary>
        public int Seed { get; set; }

        /// <summary>
        /// The index of the first input row in a larger dataset, for extracting it in parts: a row's random position
        /// depends on the seed and on (this + the row's index), so parts extracted with their own offsets match one
        /// extraction of the whole. Default 0.
        /// </summary>
        public long FirstRowIndex { get; set; }

        /// <summary>Positions this close to any edge of the first layer's grid are never drawn by <see cref="ActivationSampling.RandomPosition"/>. Default 1.</summary>
        public int Margin { get; set; } = 1;

        /// <summary>
        /// How token layers of a vision transformer are laid out ([N, T, C] or [N, C, T], class and register tokens
        /// before the row-major patch grid). Default null: <see cref="TokenLayout.Default"/> ([N, T, C], one class token).
        /// </summary>
        public TokenLayout? Tokens { get; set; }

        /// <summary>Images per ONNX Runtime call. Default 32.</summary>
        public int BatchSize { get; set; } = 32;

        /// <summary>The pixel conversion; null (the default) uses the model's own (<see cref="ActivationModel.Preprocessing"/>).</summary>
        public ImagePreprocessing? Preprocessing { get; set; }

        /// <summary>Image width for networks with a symbolic input size; 0 (default) takes the network's.</summary>
        public int ImageWidth { get; set; }

        /// <summary>Image height for networks with a symbolic input size; 0 (default) takes the network's.</summary>
        public int ImageHeight { get; set; }

        /// <summary>Fail on (default) or skip rows whose image is missing, unreadable or wrongly sized.</summary>
        public BadRowHandling BadRows { get; set; } = BadRowHandling.Fail;

        /// <summary>
        /// Cancels reading the transformed data: a cursor over it throws <see cref="OperationCanceledException"/> at its
        /// next batch once the token is cancelled. Default none.
        /// </summary>
        public CancellationToken CancellationToken { get; set; }

        /// <summary>An optional text column with each row's image path, named in error messages and skip reports. Default none.</summary>
        public string? ImagePathColumnName { get; set; }

        /// <summary>Where ONNX Runtime runs (CPU by default; CUDA with fallback), threads and spinning.</summary>
        public OnnxSessionOptions Session { get; set; } = new();

        internal Options Clone()
        {
            var c = (Options)MemberwiseClone();
            c.Layers = Layers.ToArray();
            c.OutputColumnNames = OutputColumnNames?.ToArray();
            c.Preprocessing = Preprocessing?.Clone();
            c.Session = Session.Clone();
            return c;
        }

        /// <summary>
        /// A copy that reads image paths from <paramref name="pathColumn"/> (from row 0) and writes the activation at
        /// every position of the (first) layer with its position: an atlas's own extraction, applied to whole images.
        /// </summary>
        internal Options AtEveryPosition(string pathColumn, string activationColumn, string positionColumn, BadRowHandling badRows)
        {
            var c = Clone();
            c.Sampling = ActivationSampling.AllPositions;
            c.BadRows = badRows;
            c.SpatialMeanColumnName = null;
            c.OutputColumnNames = [activationColumn];
            c.PositionColumnName = positionColumn;
            c.InputColumnName = pathColumn;
            c.ImagePathColumnName = pathColumn;
            c.FirstRowIndex = 0;
            return c;
        }
    }

    internal ActivationExtractingEstimator(MLContext mlContext, Options options)
    {
        _mlContext = mlContext ?? throw new ArgumentNullException(nameof(mlContext));
        ArgumentNullException.ThrowIfNull(options);
        if (options.Model is null)
            throw new ArgumentException("Options.Model is required: ActivationModel.FromFile(...) or PretrainedModels.ResNet18.", nameof(options));
        if (options.Layers is null || options.Layers.Length == 0)
            throw new ArgumentException("Options.Layers must name at least one layer.", nameof(options));
        if (options.BatchSize < 1)
            throw new ArgumentOutOfRangeException(nameof(options), options.BatchSize, "Options.BatchSize must be at least 1.");
        if (options.OutputColumnNames is not null && options.OutputColumnNames.Length != options.Layers.Length)
            throw new ArgumentException($"Options.OutputColumnNames has {options.OutputColumnNames.Length} names for {options.Layers.Length} layers.", nameof(options));
        _options = options.Clone();
    }

    /// <summary>The image size the network takes (what <c>ResizeImages</c> must produce); compiles the network on first use.</summary>
    public (int Width, int Height) ImageSize => (Compiled().Engine.Converter.Width, Compiled().Engine.Converter.Height);

    /// <summary>Checks the input column and returns the transformer (the network is compiled once and shared).</summary>
    /// <param name="input">The data (only its schema is read).</param>
    public ActivationExtractingTransformer Fit(IDataView input)
    {
        ArgumentNullException.ThrowIfNull(input);
        var t = Compiled();
        t.GetOutputSchema(input.Schema);
        return t;
    }

    /// <summary>The schema after the transformer: the input columns, the position and one vector column per layer.</summary>
    /// <param name="inputSchema">The input schema shape.</param>
    public SchemaShape GetOutputSchema(SchemaShape inputSchema)
    {
        ArgumentNullException.ThrowIfNull(inputSchema);
        var builder = new DataViewSchema.Builder();
        foreach (var c in inputSchema)
        {
            DataViewType type = c.Kind switch
            {
                SchemaShape.Column.VectorKind.Scalar => c.ItemType,
                SchemaShape.Column.VectorKind.Vector when c.Name == _options.InputColumnName && c.ItemType == NumberDataViewType.Single =>
                    new VectorDataViewType(NumberDataViewType.Single, Compiled().PixelCount),
                _ => new VectorDataViewType((PrimitiveDataViewType)c.ItemType),
            };
            builder.AddColumn(c.Name, type);
        }
        return SchemaShapes.FromSchema(Compiled().GetOutputSchema(builder.ToSchema()));
    }

    private ActivationExtractingTransformer Compiled() => _compiled ??= new ActivationExtractingTransformer(_mlContext, _options);
}
