using System.Diagnostics;
using Microsoft.ML.ActivationAtlas.Projection.Internal;
using Microsoft.ML.ActivationAtlas.Projection.Knn;
using Microsoft.ML.ActivationAtlas.Projection.Sparse;

namespace Microsoft.ML.ActivationAtlas.Projection.Umap;

/// <summary>
/// UMAP (McInnes, Healy and Melville 2018) following umap-learn 0.5: kNN graph (exact or NN-descent), fuzzy simplicial
/// set, a/b curve fit, spectral initialisation, and the negative-sampling SGD layout optimisation.
/// </summary>
public sealed class UmapReducer
{
    /// <summary>Creates a reducer with the given options (umap-learn defaults when null).</summary>
    /// <param name="options">The settings.</param>
    public UmapReducer(UmapOptions? options = null)
    {
        Options = options ?? new UmapOptions();
        Options.Validate();
    }

    /// <summary>The settings.</summary>
    public UmapOptions Options { get; }

    /// <summary>Fits a layout of the row-major rows.</summary>
    /// <param name="data">Row-major rows, <paramref name="rows"/> x <paramref name="dims"/>; kept by the model (not copied).</param>
    /// <param name="rows">Number of rows; at least <see cref="UmapOptions.Neighbors"/> + 1.</param>
    /// <param name="dims">Columns per row.</param>
    /// <param name="progress">Optional progress per stage.</param>
    /// <param name="cancellationToken">Cancels the fit.</param>
    /// <exception cref="ArgumentException">Too few rows, non-finite values, a buffer of the wrong size, or all rows identical.</exception>
    public UmapModel Fit(float[] data, int rows, int dims, IProgress<ProjectionProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        var o = Options;
        if (rows < o.Neighbors + 1)
            throw new ArgumentException($"UMAP with Neighbors = {o.Neighbors} needs at least {o.Neighbors + 1} rows, but got {rows}; lower Neighbors or add rows.", nameof(rows));
        var prepared = new PreparedData(data, rows, dims, o.Metric, "UMAP training data");
        if (AllRowsIdentical(prepared))
            throw new ArgumentException($"UMAP training data: all {rows} rows are identical, so there is no structure to lay out.", nameof(data));

        var clock = Stopwatch.StartNew();
        int k = o.Neighbors;
        var knnProgress = StageProgress.For(progress, "knn");
        KnnGraph knn = UmapModel.UseExact(o.KnnAlgorithm, rows)
            ? ExactKnn.Build(prepared, k, cancellationToken, knnProgress)
            : NNDescent.Build(prepared, k, NNDescentSettings.For(rows, k, o.Seed), cancellationToken, knnProgress);
        double knnSeconds = clock.Elapsed.TotalSeconds;

        progress?.Report(new ProjectionProgress("graph", 0));
        var graph = BuildGraph(knn, o);
        var (a, b) = CurveFit.FindAB(o.Spread, o.MinDist);
        progress?.Report(new ProjectionProgress("graph", 1));

        int epochs = o.Epochs ?? (rows <= 10000 ? 500 : 200);
        graph = graph.Prune(graph.MaxValue() / epochs);

        progress?.Report(new ProjectionProgress("init", 0));
        var embedding = InitialLayout(graph, prepared, o, cancellationToken);
        progress?.Report(new ProjectionProgress("init", 1));

        var optClock = Stopwatch.StartNew();
        var heads = new int[graph.NonZeros];
        for (int i = 0; i < rows; i++)
            heads.AsSpan(graph.RowPointers[i], graph.RowPointers[i + 1] - graph.RowPointers[i]).Fill(i);
        var epochsPerSample = UmapOptimizer.EpochsPerSample(graph.Values, epochs);
        UmapOptimizer.Optimize(embedding, embedding, heads, graph.ColumnIndices, rows, epochsPerSample, o.Components, a, b,
            o.RepulsionStrength, o.LearningRate, o.NegativeSampleRate, epochs, moveOther: true, o.Deterministic, o.Seed,
            cancellationToken, StageProgress.For(progress, "optimize"));

        var model = new UmapModel(o, data, rows, dims, knn, embedding, a, b)
        {
            KnnSeconds = knnSeconds,
            OptimizeSeconds = optClock.Elapsed.TotalSeconds,
        };
        model.AttachPrepared(prepared);
        return model;
    }

    /// <summary>The symmetric fuzzy graph of a kNN graph (umap-learn's <c>fuzzy_simplicial_set</c>).</summary>
    internal static CsrGraph BuildGraph(KnnGraph knn, UmapOptions o)
    {
        var (sigmas, rhos) = FuzzySimplicialSet.SmoothKnnDistances(knn, knn.K, o.LocalConnectivity);
        var membership = FuzzySimplicialSet.MembershipStrengths(knn, sigmas, rhos, knn.Rows, bipartite: false);
        return FuzzySimplicialSet.Union(membership, o.SetOpMixRatio);
    }

    private static float[] InitialLayout(CsrGraph graph, PreparedData data, UmapOptions o, CancellationToken ct)
    {
        int n = graph.Rows, dim = o.Components;
        float[] embedding;
        var rng = Rng.ForStream(o.Seed, 3);
        if (o.Initialization == UmapInitialization.Spectral)
        {
            embedding = SpectralLayout.Compute(graph, data, dim, o.Seed, ct);
            float maxAbs = System.Numerics.Tensors.TensorPrimitives.MaxMagnitude<float>(embedding);
            float expansion = maxAbs > 0 ? 10f / Math.Abs(maxAbs) : 1f;
            for (int i = 0; i < embedding.Length; i++)
                embedding[i] = embedding[i] * expansion + (float)(rng.NextGaussian() * 0.0001);
        }
        else
        {
            embedding = new float[n * dim];
            for (int i = 0; i < embedding.Length; i++)
                embedding[i] = (float)(rng.NextDouble() * 20 - 10);
        }
        // Scale every axis to [0, 10].
        for (int d = 0; d < dim; d++)
        {
            float min = float.PositiveInfinity, max = float.NegativeInfinity;
            for (int i = 0; i < n; i++)
            {
                min = Math.Min(min, embedding[i * dim + d]);
                max = Math.Max(max, embedding[i * dim + d]);
            }
            float range = max - min;
            for (int i = 0; i < n; i++)
                embedding[i * dim + d] = range > 0 ? 10f * (embedding[i * dim + d] - min) / range : 5f;
        }
        return embedding;
    }

    private static bool AllRowsIdentical(PreparedData data)
    {
        var first = data.Row(0);
        for (int i = 1; i < data.Rows; i++)
        {
            if (!data.Row(i).SequenceEqual(first))
                return false;
        }
        return true;
    }
}
