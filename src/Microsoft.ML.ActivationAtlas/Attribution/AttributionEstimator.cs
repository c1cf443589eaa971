using Microsoft.ML.ActivationAtlas.Common;
using Microsoft.ML.ActivationAtlas.Extraction;
using Microsoft.ML.ActivationAtlas.Onnx;
using Microsoft.ML.Data;

namespace Microsoft.ML.ActivationAtlas.Attribution;

/// <summary>
/// Adds, for each row of activation extraction (image, position), the attribution of every class logit to the
/// activation vector h at that position: h . d(logit_k)/d(h), computed by the forward-mode (tangent) graph of
/// "layer -> logits" in batches. Nothing is learned; fitting checks the schema and compiles the graph.
/// Created by <see cref="AttributionCatalog.ComputeAttribution(TransformsCatalog, AttributionEstimator.Options)"/>.
/// </summary>
public sealed class AttributionEstimator : IEstimator<AttributionTransformer>
{
    private readonly MLContext _mlContext;
    private readonly Options _options;

    /// <summary>Settings of the attribution. Defaults are documented on each member.</summary>
    public sealed class Options
    {
        /// <summary>The classifier network (required), e.g. one built with <c>ClassifierHead.Attach</c>.</summary>
        public ActivationModel? Model { get; set; }

        /// <summary>The layer whose activation vectors are attributed (required): tensor or friendly name, a spatial or token layer.</summary>
        public string Layer { get; set; } = "";

        /// <summary>The logits tensor [N, K]. Default: null, the network's first output.</summary>
        public string? LogitsTensorName { get; set; }

        /// <summary>The output column (a vector of K floats, slot names = class names). Default <c>Attribution</c>.</summary>
        public string OutputColumnName { get; set; } = AtlasColumnNames.Attribution;

        /// <summary>The image column: image file paths (text), an image sized as the network expects, or planar RGB float pixels 0..255. Default <c>Image</c>.</summary>
        public string InputColumnName { get; set; } = AtlasColumnNames.Image;

        /// <summary>
        /// The activation column of the same layer written by activation extraction (e.g. <c>Activations</c>), or null
        /// (the default). When set and the classifier reads the layer only through a linear head on its spatial mean
        /// (as <see cref="ClassifierHead"/> attaches), the attribution is computed in closed form from this column,
        /// (W_k . h) / (H W), with no network run and no image or position column needed; see <see cref="Method"/>.
        /// </summary>
        public string? ActivationColumnName { get; set; }

        /// <summary>How the attribution is computed. Default <see cref="AttributionMethod.Auto"/>.</summary>
        public AttributionMethod Method { get; set; } = AttributionMethod.Auto;

        /// <summary>
        /// The position column [y, x] (int vector of 2) written by activation extraction; on a token layer a patch of
        /// the patch grid or [-2, -2] for the class token. Default <c>Position</c>.
        /// </summary>
        public string PositionColumnName { get; set; } = AtlasColumnNames.Position;

        /// <summary>Class names; null (default) reads <see cref="LabelsPath"/>, else the model's metadata, else <c>class_i</c>.</summary>
        public string[]? ClassNames { get; set; }

        /// <summary>A text file with one class name per line. Default null.</summary>
        public string? LabelsPath { get; set; }

        /// <summary>
        /// The article's max-pool relaxation: the derivative through each max pool between the layer and the logits
        /// is averaged over the pooling window instead of taken at the window's maximum (see
        /// <c>JvpOptions.MaxPoolRelaxation</c>); for InceptionV1-style networks. Default false.
        /// </summary>
        public bool MaxPoolRelaxation { get; set; }

        /// <summary>
        /// How token layers are laid out (see <c>ActivationExtractingEstimator.Options.Tokens</c>); use the same as for
        /// extraction. Default null: [N, T, C] with one class token.
        /// </summary>
        public TokenLayout? Tokens { get; set; }

        /// <summary>Rows per ONNX Runtime call. Default 32.</summary>
        public int BatchSize { get; set; } = 32;

        /// <summary>Where ONNX Runtime runs (CPU by default; CUDA with fallback), threads and spinning.</summary>
        public OnnxSessionOptions Session { get; set; } = new();

        /// <summary>
        /// Cancels reading the transformed data: a cursor over it throws <see cref="OperationCanceledException"/> at its
        /// next batch once the token is cancelled. Default none.
        /// </summary>
        public CancellationToken CancellationToken { get; set; }

        internal Options Clone()
        {
            var c = (Options)MemberwiseClone();
            c.ClassNames = ClassNames?.ToArray();
            c.Session = Session.Clone();
            return c;
        }
    }

    internal AttributionEstimator(MLContext mlContext, Options options)
    {
        _mlContext = mlContext ?? throw new ArgumentNullException(nameof(mlContext));
        ArgumentNullException.ThrowIfNull(options);
        if (options.Model is null)
            throw new ArgumentException("Options.Model is required: the classifier network.", nameof(options));
        if (string.IsNullOrWhiteSpace(options.Layer))
            throw new ArgumentException("Options.Layer is required: the layer whose activations are attributed.", nameof(options));
        if (options.BatchSize < 1)
            throw new ArgumentOutOfRangeException(nameof(options), $"Options.BatchSize is {options.BatchSize}; it must be at least 1.");
        if (options.Method == AttributionMethod.LinearHead && options.ActivationColumnName is null)
            throw new ArgumentException("Options.Method is LinearHead: set Options.ActivationColumnName, the activation column the closed form reads.", nameof(options));
        _options = options.Clone();
    }

    /// <summary>Checks the input columns and compiles the attribution graph.</summary>
    /// <param name="input">The data (only its schema is read).</param>
    public AttributionTransformer Fit(IDataView input)
    {
        ArgumentNullException.ThrowIfNull(input);
        _ = GetOutputSchema(SchemaShapes.FromSchema(input.Schema));
        var t = new AttributionTransformer(_mlContext, _options);
        _ = t.GetOutputSchema(input.Schema);
        return t;
    }

    /// <summary>The input schema with the attribution column.</summary>
    /// <param name="inputSchema">The input schema shape.</param>
    public SchemaShape GetOutputSchema(SchemaShape inputSchema)
    {
        ArgumentNullException.ThrowIfNull(inputSchema);
        if (_options.ActivationColumnName is { } activations)
            SchemaShapes.RequireFloatVector(inputSchema, activations, "the activations attributed");
        if (_options.ActivationColumnName is not null && _options.Method != AttributionMethod.TangentGraph)
            return SchemaShapes.Append(inputSchema, (_options.OutputColumnName, new VectorDataViewType(NumberDataViewType.Single)));
        if (!inputSchema.Any(c => c.Name == _options.InputColumnName))
            throw new ArgumentOutOfRangeException(nameof(inputSchema), $"The image column '{_options.InputColumnName}' is missing.");
        if (!inputSchema.Any(c => c.Name == _options.PositionColumnName))
            throw new ArgumentOutOfRangeException(nameof(inputSchema), $"The position column '{_options.PositionColumnName}' is missing; it comes from ExtractActivations.");
        return SchemaShapes.Append(inputSchema, (_options.OutputColumnName, new VectorDataViewType(NumberDataViewType.Single)));
    }
}

/// <summary>How <see cref="AttributionEstimator"/> computes h . d(logit_k)/d(h).</summary>
public enum AttributionMethod
{
    /// <summary>
    /// The closed form when <see cref="AttributionEstimator.Options.ActivationColumnName"/> is set and the classifier
    /// reads the layer only through a linear head on its spatial mean; the tangent graph otherwise. The default.
    /// </summary>
    Auto,

    /// <summary>Always the forward-mode (tangent) graph of layer -> logits, run on the images.</summary>
    TangentGraph,

    /// <summary>Always the closed form (W_k . h) / (H W) from the activation column; an error when the classifier is not such a head.</summary>
    LinearHead,
}
