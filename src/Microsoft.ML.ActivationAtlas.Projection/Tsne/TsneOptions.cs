namespace Microsoft.ML.ActivationAtlas.Projection.Tsne;

/// <summary>The initial layout of t-SNE.</summary>
public enum TsneInitialization
{
    /// <summary>The first principal components, scaled so the first has standard deviation 1e-4 (scikit-learn's default).</summary>
    Pca = 0,

    /// <summary>Gaussian with standard deviation 1e-4.</summary>
    Random = 1,
}

/// <summary>
/// Barnes-Hut t-SNE settings; the defaults are scikit-learn's <c>TSNE</c> (1.2 and later), which match openTSNE's
/// for perplexity, exaggeration, momentum and PCA initialisation.
/// </summary>
public sealed record TsneOptions
{
    /// <summary>The defaults that catalog overloads and option classes share (scikit-learn's).</summary>
    public static class Defaults
    {
        /// <summary>Output dimension: 2.</summary>
        public const int Components = 2;

        /// <summary>Perplexity: 30.</summary>
        public const float Perplexity = 30f;

        /// <summary>Seed: 42.</summary>
        public const int Seed = 42;
    }

    /// <summary>Output dimension: 1 or 2 (default 2).</summary>
    public int Components { get; init; } = Defaults.Components;

    /// <summary>
    /// Perplexity, the effective number of neighbours (default 30); neighbours searched: <c>3 * perplexity + 1</c>.
    /// With fewer than <c>3 * perplexity + 1</c> rows it is lowered to <c>(rows - 1) / 3</c>, as openTSNE does.
    /// </summary>
    public float Perplexity { get; init; } = Defaults.Perplexity;

    /// <summary>Factor applied to P during the first <see cref="ExaggerationIterations"/> (default 12).</summary>
    public float EarlyExaggeration { get; init; } = 12f;

    /// <summary>Iterations with early exaggeration and momentum 0.5 (default 250).</summary>
    public int ExaggerationIterations { get; init; } = 250;

    /// <summary>Total iterations (default 1000); after the exaggeration phase momentum is 0.8.</summary>
    public int Iterations { get; init; } = 1000;

    /// <summary>
    /// Learning rate; null (default) means "auto": scikit-learn's <c>max(n / EarlyExaggeration / 4, 50)</c> from 200
    /// rows on, <c>n / 4</c> below (scikit-learn's floor of 50 throws the points of a few dozen rows far apart).
    /// </summary>
    public float? LearningRate { get; init; }

    /// <summary>Barnes-Hut accuracy: a cell is summarised when its width / distance is below theta (default 0.5).</summary>
    public float Theta { get; init; } = 0.5f;

    /// <summary>Smallest per-coordinate gain (default 0.01).</summary>
    public float MinGain { get; init; } = 0.01f;

    /// <summary>
    /// Largest distance a point may move in one iteration (openTSNE's <c>max_step_norm</c>, default 5): a longer update
    /// is scaled down to this length. Keeps points from shooting off when the learning rate is large for the number of
    /// rows (tiny subsets). Null turns the limit off (scikit-learn's behaviour).
    /// </summary>
    public float? MaxStepNorm { get; init; } = 5f;

    /// <summary>Input distance (default euclidean; its squares enter the Gaussian kernel, as in scikit-learn).</summary>
    public DistanceMetric Metric { get; init; } = DistanceMetric.Euclidean;

    /// <summary>Initial layout (default PCA).</summary>
    public TsneInitialization Initialization { get; init; } = TsneInitialization.Pca;

    /// <summary>Neighbour search (default: exact below 4,096 rows, else NN-descent).</summary>
    public Umap.KnnAlgorithm KnnAlgorithm { get; init; } = Umap.KnnAlgorithm.Auto;

    /// <summary>Seed (default 42). t-SNE's gradient steps are deterministic for a seed whatever the thread count.</summary>
    public int Seed { get; init; } = Defaults.Seed;

    internal void Validate()
    {
        if (Components is < 1 or > 2)
            throw new ArgumentOutOfRangeException(nameof(Components), Components, "t-SNE supports 1 or 2 output components.");
        if (!(Perplexity > 0))
            throw new ArgumentOutOfRangeException(nameof(Perplexity), Perplexity, "Perplexity must be positive.");
        if (!(EarlyExaggeration >= 1))
            throw new ArgumentOutOfRangeException(nameof(EarlyExaggeration), EarlyExaggeration, "EarlyExaggeration must be at least 1.");
        if (Iterations < 1 || ExaggerationIterations < 0 || ExaggerationIterations > Iterations)
            throw new ArgumentOutOfRangeException(nameof(Iterations), Iterations, "Iterations must be positive and at least ExaggerationIterations.");
        if (LearningRate is float lr && !(lr > 0))
            throw new ArgumentOutOfRangeException(nameof(LearningRate), LearningRate, "LearningRate must be positive.");
        if (MaxStepNorm is float step && !(step > 0))
            throw new ArgumentOutOfRangeException(nameof(MaxStepNorm), MaxStepNorm, "MaxStepNorm must be positive (or null for no limit).");
        if (!(Theta >= 0))
            throw new ArgumentOutOfRangeException(nameof(Theta), Theta, "Theta must be 0 or more.");
    }
}
