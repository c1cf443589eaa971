using Microsoft.ML.ActivationAtlas.Projection.Umap;
using Microsoft.ML.Data;

namespace Microsoft.ML.ActivationAtlas.Projection;

/// <summary>
/// Fits a UMAP layout of a float-vector column (umap-learn 0.5's algorithm). Create it with
/// <c>mlContext.Transforms.ProjectToUmap(...)</c>. The fitted <see cref="UmapTransformer"/> returns the fitted layout
/// for the training rows and places other rows with UMAP's transform.
/// </summary>
public sealed class UmapEstimator : IEstimator<UmapTransformer>
{
    private readonly Options _options;

    internal UmapEstimator(TransformsCatalog catalog, Options options)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        ArgumentNullException.ThrowIfNull(options);
        if (string.IsNullOrEmpty(options.OutputColumnName))
            throw new ArgumentException("OutputColumnName must be set.", nameof(options));
        // A copy: the caller's options are never written to, and later changes to them do not reach this estimator.
        _options = options.Clone();
        _options.InputColumnName ??= _options.OutputColumnName;
        _options.Seed ??= Common.CatalogContext.DrawSeed(catalog, "ProjectToUmap");
        _ = new UmapReducer(_options.ToCore());
    }

    /// <summary>Fits the layout of the input column's rows.</summary>
    /// <param name="input">The training data.</param>
    public UmapTransformer Fit(IDataView input)
    {
        ArgumentNullException.ThrowIfNull(input);
        const string stage = "ProjectToUmap";
        var (data, rows, dims) = ProjectionColumns.Read(input, _options.InputColumnName!, stage, 0, _options.CancellationToken);
        UmapModel model;
        try
        {
            model = new UmapReducer(_options.ToCore()).Fit(data, rows, dims, _options.Progress, _options.CancellationToken);
        }
        catch (ArgumentException e) when (e is not ArgumentOutOfRangeException)
        {
            throw new ArgumentException($"{stage} (column '{_options.InputColumnName}'): {e.Message}", e);
        }
        return new UmapTransformer(model, _options.InputColumnName!, _options.OutputColumnName, ProjectionColumns.Fingerprint(data))
        {
            Progress = _options.Progress,
        };
    }

    /// <summary>The input schema plus the layout column (a float vector of <see cref="Options.NumberOfComponents"/>).</summary>
    /// <param name="inputSchema">The input schema shape.</param>
    public SchemaShape GetOutputSchema(SchemaShape inputSchema)
    {
        ProjectionColumns.CheckInput(inputSchema, _options.InputColumnName!, "ProjectToUmap");
        return ProjectionColumns.OutputShape(inputSchema, _options.OutputColumnName, _options.NumberOfComponents);
    }

    /// <summary>Settings of <see cref="UmapEstimator"/>. Defaults are umap-learn 0.5's.</summary>
    /// <remarks>
    /// Activation atlas settings: <c>NumberOfNeighbors = 20, MinDist = 0.01, Metric = Cosine</c> for a single-layer
    /// atlas; <c>NumberOfNeighbors = 50, MinDist = 0.05, Metric = Cosine</c> for a smoother layout.
    /// </remarks>
    public sealed class Options
    {
        private static readonly UmapOptions Core = new();

        internal Options Clone() => (Options)MemberwiseClone();

        /// <summary>The layout column to create (a float vector of <see cref="NumberOfComponents"/>).</summary>
        public string OutputColumnName { get; set; } = AtlasColumnNames.Layout;

        /// <summary>
        /// The float-vector column to lay out. Default <see cref="AtlasColumnNames.Activation"/>, the extraction stage's
        /// default output; null means <see cref="OutputColumnName"/>.
        /// </summary>
        public string? InputColumnName { get; set; } = AtlasColumnNames.Activation;

        /// <summary>Neighbourhood size (default 15).</summary>
        public int NumberOfNeighbors { get; set; } = Core.Neighbors;

        /// <summary>Layout dimension (default 2).</summary>
        public int NumberOfComponents { get; set; } = Core.Components;

        /// <summary>Minimum distance between laid-out points (default 0.1).</summary>
        public float MinDist { get; set; } = Core.MinDist;

        /// <summary>Scale of the layout (default 1).</summary>
        public float Spread { get; set; } = Core.Spread;

        /// <summary>Input distance (default euclidean).</summary>
        public DistanceMetric Metric { get; set; } = Core.Metric;

        /// <summary>Optimisation epochs; null (default) means 500 up to 10,000 rows, else 200.</summary>
        public int? NumberOfEpochs { get; set; }

        /// <summary>Initial learning rate (default 1).</summary>
        public float LearningRate { get; set; } = Core.LearningRate;

        /// <summary>Weight of negative samples (default 1).</summary>
        public float RepulsionStrength { get; set; } = Core.RepulsionStrength;

        /// <summary>Negative samples per positive sample (default 5).</summary>
        public int NegativeSampleRate { get; set; } = Core.NegativeSampleRate;

        /// <summary>Neighbours assumed connected (default 1).</summary>
        public float LocalConnectivity { get; set; } = Core.LocalConnectivity;

        /// <summary>Fuzzy union (1, default) to intersection (0) mix.</summary>
        public float SetOpMixRatio { get; set; } = Core.SetOpMixRatio;

        /// <summary>Initial layout (default spectral).</summary>
        public UmapInitialization Initialization { get; set; } = Core.Initialization;

        /// <summary>Neighbour search (default: exact below 4,096 rows, else NN-descent).</summary>
        public KnnAlgorithm KnnAlgorithm { get; set; } = Core.KnnAlgorithm;

        /// <summary>
        /// Seed of every random choice; null (the default) draws one from the <see cref="MLContext"/>'s random stream, so
        /// <c>new MLContext(seed: s)</c> makes the layout reproducible, as it does for ML.NET's own trainers.
        /// </summary>
        public int? Seed { get; set; }

        /// <summary>Single-threaded optimisation, bit-identical for a seed (default false: parallel).</summary>
        public bool Deterministic { get; set; }

        /// <summary>Receives progress of the fit and of transforms (optional).</summary>
        public IProgress<ProjectionProgress>? Progress { get; set; }

        /// <summary>Cancels a long fit or transform.</summary>
        public CancellationToken CancellationToken { get; set; }

        internal UmapOptions ToCore() => new()
        {
            Neighbors = NumberOfNeighbors,
            Components = NumberOfComponents,
            MinDist = MinDist,
            Spread = Spread,
            Metric = Metric,
            Epochs = NumberOfEpochs,
            LearningRate = LearningRate,
            RepulsionStrength = RepulsionStrength,
            NegativeSampleRate = NegativeSampleRate,
            LocalConnectivity = LocalConnectivity,
            SetOpMixRatio = SetOpMixRatio,
            Initialization = Initialization,
            KnnAlgorithm = KnnAlgorithm,
            Seed = Seed ?? 0,
            Deterministic = Deterministic,
        };
    }
}
