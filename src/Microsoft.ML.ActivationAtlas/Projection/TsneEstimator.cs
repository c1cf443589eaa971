using Microsoft.ML.ActivationAtlas.Projection.Tsne;

namespace Microsoft.ML.ActivationAtlas.Projection;

/// <summary>
/// Fits a Barnes-Hut t-SNE layout (1-D or 2-D) of a float-vector column. Create it with
/// <c>mlContext.Transforms.ProjectToTsne(...)</c>. The fitted <see cref="TsneTransformer"/> returns the fitted
/// positions for the training rows; rows it did not see are interpolated (see <see cref="TsneModel.Place"/>).
/// </summary>
public sealed class TsneEstimator : IEstimator<TsneTransformer>
{
    private readonly Options _options;

    internal TsneEstimator(TransformsCatalog catalog, Options options)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        ArgumentNullException.ThrowIfNull(options);
        if (string.IsNullOrEmpty(options.OutputColumnName))
            throw new ArgumentException("OutputColumnName must be set.", nameof(options));
        // A copy: the caller's options are never written to, and later changes to them do not reach this estimator.
        _options = options.Clone();
        _options.InputColumnName ??= _options.OutputColumnName;
        _options.Seed ??= Common.CatalogContext.DrawSeed(catalog, "ProjectToTsne");
        _ = new TsneReducer(_options.ToCore());
    }

    /// <summary>Fits the layout of the input column's rows.</summary>
    /// <param name="input">The training data.</param>
    public TsneTransformer Fit(IDataView input)
    {
        ArgumentNullException.ThrowIfNull(input);
        const string stage = "ProjectToTsne";
        var (data, rows, dims) = ProjectionColumns.Read(input, _options.InputColumnName!, stage, 0, _options.CancellationToken);
        TsneModel model;
        try
        {
            model = new TsneReducer(_options.ToCore()).Fit(data, rows, dims, _options.Progress, _options.CancellationToken);
        }
        catch (ArgumentException e) when (e is not ArgumentOutOfRangeException)
        {
            throw new ArgumentException($"{stage} (column '{_options.InputColumnName}'): {e.Message}", e);
        }
        return new TsneTransformer(model, _options.InputColumnName!, _options.OutputColumnName, ProjectionColumns.Fingerprint(data));
    }

    /// <summary>The input schema plus the layout column.</summary>
    /// <param name="inputSchema">The input schema shape.</param>
    public SchemaShape GetOutputSchema(SchemaShape inputSchema)
    {
        ProjectionColumns.CheckInput(inputSchema, _options.InputColumnName!, "ProjectToTsne");
        return ProjectionColumns.OutputShape(inputSchema, _options.OutputColumnName, _options.NumberOfComponents);
    }

    /// <summary>Settings of <see cref="TsneEstimator"/>; defaults are scikit-learn's <c>TSNE</c>.</summary>
    public sealed class Options
    {
        private static readonly TsneOptions Core = new();

        internal Options Clone() => (Options)MemberwiseClone();

        /// <summary>The layout column to create (a float vector of <see cref="NumberOfComponents"/>).</summary>
        public string OutputColumnName { get; set; } = AtlasColumnNames.Layout;

        /// <summary>
        /// The float-vector column to lay out. Default <see cref="AtlasColumnNames.Activation"/>, the extraction stage's
        /// default output; null means <see cref="OutputColumnName"/>.
        /// </summary>
        public string? InputColumnName { get; set; } = AtlasColumnNames.Activation;

        /// <summary>Layout dimension, 1 or 2 (default 2; the class-comparison view uses 1).</summary>
        public int NumberOfComponents { get; set; } = Core.Components;

        /// <summary>Perplexity (default 30); lowered to <c>(rows - 1) / 3</c> for fewer than <c>3 * perplexity + 1</c> rows.</summary>
        public float Perplexity { get; set; } = Core.Perplexity;

        /// <summary>Early exaggeration (default 12).</summary>
        public float EarlyExaggeration { get; set; } = Core.EarlyExaggeration;

        /// <summary>Iterations with early exaggeration (default 250).</summary>
        public int ExaggerationIterations { get; set; } = Core.ExaggerationIterations;

        /// <summary>Total iterations (default 1000).</summary>
        public int NumberOfIterations { get; set; } = Core.Iterations;

        /// <summary>
        /// Learning rate; null (default) means <c>max(n / EarlyExaggeration / 4, 50)</c> from 200 rows on, <c>n / 4</c>
        /// below (see <see cref="TsneOptions.LearningRate"/>).
        /// </summary>
        public float? LearningRate { get; set; }

        /// <summary>Largest distance a point moves in one iteration (openTSNE's <c>max_step_norm</c>, default 5; null for no limit).</summary>
        public float? MaxStepNorm { get; set; } = Core.MaxStepNorm;

        /// <summary>Barnes-Hut accuracy (default 0.5).</summary>
        public float Theta { get; set; } = Core.Theta;

        /// <summary>Input distance (default euclidean).</summary>
        public DistanceMetric Metric { get; set; } = Core.Metric;

        /// <summary>Initial layout (default PCA).</summary>
        public TsneInitialization Initialization { get; set; } = Core.Initialization;

        /// <summary>
        /// Seed of every random choice; null (the default) draws one from the <see cref="MLContext"/>'s random stream, so
        /// <c>new MLContext(seed: s)</c> makes the layout reproducible, as it does for ML.NET's own trainers.
        /// </summary>
        public int? Seed { get; set; }

        /// <summary>Receives progress (optional).</summary>
        public IProgress<ProjectionProgress>? Progress { get; set; }

        /// <summary>Cancels a long fit.</summary>
        public CancellationToken CancellationToken { get; set; }

        internal TsneOptions ToCore() => new()
        {
            Components = NumberOfComponents,
            Perplexity = Perplexity,
            EarlyExaggeration = EarlyExaggeration,
            ExaggerationIterations = ExaggerationIterations,
            Iterations = NumberOfIterations,
            LearningRate = LearningRate,
            MaxStepNorm = MaxStepNorm,
            Theta = Theta,
            Metric = Metric,
            Initialization = Initialization,
            Seed = Seed ?? 0,
        };
    }
}
