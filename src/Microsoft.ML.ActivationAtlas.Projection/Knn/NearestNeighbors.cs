using Microsoft.ML.ActivationAtlas.Projection.Internal;

namespace Microsoft.ML.ActivationAtlas.Projection.Knn;

/// <summary>k-nearest-neighbour graphs of row-major float data (the searches UMAP and t-SNE use).</summary>
public static class NearestNeighbors
{
    /// <summary>The exact kNN graph of the rows with themselves (blocked SIMD brute force); neighbour 0 is the row itself.</summary>
    /// <param name="data">Row-major rows.</param>
    /// <param name="rows">Number of rows.</param>
    /// <param name="dims">Columns per row.</param>
    /// <param name="k">Neighbours per row, the row itself included.</param>
    /// <param name="metric">Distance.</param>
    /// <param name="cancellationToken">Cancels the search.</param>
    public static KnnGraph Exact(float[] data, int rows, int dims, int k, DistanceMetric metric = DistanceMetric.Euclidean, CancellationToken cancellationToken = default)
    {
        CheckK(k, rows);
        return ExactKnn.Build(new PreparedData(data, rows, dims, metric), k, cancellationToken);
    }

    /// <summary>
    /// The approximate kNN graph by NN-descent with random projection tree initialisation, with umap-learn's settings
    /// for pynndescent (trees <c>min(64, 5 + round(sqrt(n) / 20))</c>, iterations <c>max(5, round(log2 n))</c>,
    /// 60 candidates, delta 0.001). Deterministic for a seed.
    /// </summary>
    /// <param name="data">Row-major rows.</param>
    /// <param name="rows">Number of rows.</param>
    /// <param name="dims">Columns per row.</param>
    /// <param name="k">Neighbours per row, the row itself included.</param>
    /// <param name="metric">Distance.</param>
    /// <param name="seed">Seed.</param>
    /// <param name="cancellationToken">Cancels the search.</param>
    public static KnnGraph Approximate(float[] data, int rows, int dims, int k, DistanceMetric metric = DistanceMetric.Euclidean, int seed = 42, CancellationToken cancellationToken = default)
    {
        CheckK(k, rows);
        return NNDescent.Build(new PreparedData(data, rows, dims, metric), k, NNDescentSettings.For(rows, k, seed), cancellationToken);
    }

    private static void CheckK(int k, int rows)
    {
        if (k < 1 || k > rows)
            throw new ArgumentOutOfRangeException(nameof(k), k, $"k must be between 1 and the number of rows ({rows}).");
    }
}
