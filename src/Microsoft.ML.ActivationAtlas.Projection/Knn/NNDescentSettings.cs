namespace Microsoft.ML.ActivationAtlas.Projection.Knn;

/// <summary>Settings of NN-descent; the defaults are those umap-learn passes to pynndescent.</summary>
internal sealed record NNDescentSettings
{
    /// <summary>Random projection trees; umap-learn: <c>min(64, 5 + round(sqrt(n) / 20))</c>.</summary>
    public int Trees { get; init; }

    /// <summary>Maximum iterations; umap-learn: <c>max(5, round(log2(n)))</c>.</summary>
    public int Iterations { get; init; }

    /// <summary>Candidates sampled per row per iteration (umap-learn passes 60).</summary>
    public int MaxCandidates { get; init; } = 60;

    /// <summary>Stop when fewer than <c>delta * k * n</c> heap updates happen in an iteration.</summary>
    public double Delta { get; init; } = 0.001;

    /// <summary>Largest tree leaf; pynndescent: <c>max(10, k)</c>.</summary>
    public int LeafSize { get; init; }

    /// <summary>Seed of every random choice.</summary>
    public int Seed { get; init; }

    /// <summary>umap-learn's settings for <paramref name="n"/> rows and <paramref name="k"/> neighbours.</summary>
    public static NNDescentSettings For(int n, int k, int seed) => new()
    {
        Trees = Math.Min(64, 5 + (int)Math.Round(Math.Sqrt(n) / 20.0)),
        Iterations = Math.Max(5, (int)Math.Round(Math.Log2(n))),
        LeafSize = Math.Max(10, k),
        Seed = seed,
    };
}
