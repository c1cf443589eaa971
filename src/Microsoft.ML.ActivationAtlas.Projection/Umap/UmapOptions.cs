namespace Microsoft.ML.ActivationAtlas.Projection.Umap;

/// <summary>How the k nearest neighbours are found.</summary>
public enum KnnAlgorithm
{
    /// <summary>Exact below 4,096 rows, NN-descent from there on (umap-learn's rule).</summary>
    Auto = 0,

    /// <summary>Exact brute force (blocked, SIMD, parallel).</summary>
    Exact = 1,

    /// <summary>NN-descent with random projection tree initialisation.</summary>
    NNDescent = 2,
}

/// <summary>
/// UMAP settings. Defaults are umap-learn 0.5's. Activation atlases use <c>Neighbors = 20, MinDist = 0.01,
/// Metric = Cosine</c> for a single-layer atlas, and <c>Neighbors = 50, MinDist = 0.05, Metric = Cosine</c> for
/// larger, smoother layouts (see <see cref="ForAtlas"/> and <see cref="ForSmoothAtlas"/>).
/// </summary>
public sealed record UmapOptions
{
    /// <summary>The defaults that catalog overloads and option classes share (umap-learn 0.5's).</summary>
    public static class Defaults
    {
        /// <summary>Neighbourhood size: 15.</summary>
        public const int Neighbors = 15;

        /// <summary>Output dimension: 2.</summary>
        public const int Components = 2;

        /// <summary>Minimum distance between embedded points: 0.1.</summary>
        public const float MinDist = 0.1f;

        /// <summary>Seed: 42.</summary>
        public const int Seed = 42;
    }

    /// <summary>Size of the local neighbourhood (umap-learn <c>n_neighbors</c>, default 15).</summary>
    public int Neighbors { get; init; } = Defaults.Neighbors;

    /// <summary>Output dimension (umap-learn <c>n_components</c>, default 2).</summary>
    public int Components { get; init; } = Defaults.Components;

    /// <summary>Minimum distance between embedded points (default 0.1).</summary>
    public float MinDist { get; init; } = Defaults.MinDist;

    /// <summary>Effective scale of embedded points (default 1).</summary>
    public float Spread { get; init; } = 1.0f;

    /// <summary>Input distance (default euclidean).</summary>
    public DistanceMetric Metric { get; init; } = DistanceMetric.Euclidean;

    /// <summary>Optimisation epochs; null means umap-learn's rule: 500 up to 10,000 rows, else 200.</summary>
    public int? Epochs { get; init; }

    /// <summary>Initial learning rate (default 1).</summary>
    public float LearningRate { get; init; } = 1.0f;

    /// <summary>Weight of negative samples (umap-learn <c>repulsion_strength</c>, default 1).</summary>
    public float RepulsionStrength { get; init; } = 1.0f;

    /// <summary>Negative samples per positive sample (default 5).</summary>
    public int NegativeSampleRate { get; init; } = 5;

    /// <summary>Neighbours assumed connected (umap-learn <c>local_connectivity</c>, default 1).</summary>
    public float LocalConnectivity { get; init; } = 1.0f;

    /// <summary>Weight of fuzzy union against intersection (default 1 = pure union).</summary>
    public float SetOpMixRatio { get; init; } = 1.0f;

    /// <summary>Initial layout: spectral (default) or random.</summary>
    public UmapInitialization Initialization { get; init; } = UmapInitialization.Spectral;

    /// <summary>How neighbours are found (default <see cref="KnnAlgorithm.Auto"/>).</summary>
    public KnnAlgorithm KnnAlgorithm { get; init; } = KnnAlgorithm.Auto;

    /// <summary>Seed of every random choice (default 42).</summary>
    public int Seed { get; init; } = Defaults.Seed;

    /// <summary>
    /// When true the optimisation runs on one thread in a fixed order, so the same seed gives a bit-identical layout.
    /// When false (default) it runs in parallel like umap-learn without a random_state: faster, but thread timing
    /// changes the layout slightly from run to run. The kNN graph is deterministic in both modes.
    /// </summary>
    public bool Deterministic { get; init; }

    /// <summary>The single-layer activation atlas settings: 20 neighbours, min_dist 0.01, cosine.</summary>
    public static UmapOptions ForAtlas { get; } = new() { Neighbors = 20, MinDist = 0.01f, Metric = DistanceMetric.Cosine };

    /// <summary>The smoother atlas settings: 50 neighbours, min_dist 0.05, cosine.</summary>
    public static UmapOptions ForSmoothAtlas { get; } = new() { Neighbors = 50, MinDist = 0.05f, Metric = DistanceMetric.Cosine };

    internal void Validate()
    {
        if (Neighbors < 2)
            throw new ArgumentOutOfRangeException(nameof(Neighbors), Neighbors, "UMAP needs at least 2 neighbours.");
        if (Components < 1)
            throw new ArgumentOutOfRangeException(nameof(Components), Components, "Components must be at least 1.");
        if (!(Spread > 0))
            throw new ArgumentOutOfRangeException(nameof(Spread), Spread, "Spread must be positive.");
        if (!(MinDist >= 0) || MinDist > Spread)
            throw new ArgumentOutOfRangeException(nameof(MinDist), MinDist, "MinDist must be between 0 and Spread.");
        if (Epochs is < 1)
            throw new ArgumentOutOfRangeException(nameof(Epochs), Epochs, "Epochs must be positive.");
        if (!(LearningRate > 0))
            throw new ArgumentOutOfRangeException(nameof(LearningRate), LearningRate, "LearningRate must be positive.");
        if (NegativeSampleRate < 0)
            throw new ArgumentOutOfRangeException(nameof(NegativeSampleRate), NegativeSampleRate, "NegativeSampleRate must be 0 or more.");
        if (!(LocalConnectivity >= 0))
            throw new ArgumentOutOfRangeException(nameof(LocalConnectivity), LocalConnectivity, "LocalConnectivity must be 0 or more.");
        if (!(SetOpMixRatio >= 0 && SetOpMixRatio <= 1))
            throw new ArgumentOutOfRangeException(nameof(SetOpMixRatio), SetOpMixRatio, "SetOpMixRatio must be between 0 and 1.");
    }
}

/// <summary>The initial layout UMAP optimises from.</summary>
public enum UmapInitialization
{
    /// <summary>Spectral embedding of the fuzzy graph (umap-learn default).</summary>
    Spectral = 0,

    /// <summary>Uniform random in [-10, 10].</summary>
    Random = 1,
}
