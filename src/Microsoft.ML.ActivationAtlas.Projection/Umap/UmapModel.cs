using System.Diagnostics;
using Microsoft.ML.ActivationAtlas.Projection.Internal;
using Microsoft.ML.ActivationAtlas.Projection.Knn;

namespace Microsoft.ML.ActivationAtlas.Projection.Umap;

/// <summary>
/// A fitted UMAP: the layout of the training rows, plus what <see cref="Transform"/> needs to place new rows
/// (the training rows, their kNN graph and the fitted curve parameters).
/// </summary>
public sealed class UmapModel
{
    private readonly object _searchLock = new();
    private PreparedData? _prepared;
    private GraphSearch? _search;

    /// <summary>Rebuilds a model from its parts (for example when loading a saved model).</summary>
    /// <param name="options">The options it was fitted with.</param>
    /// <param name="trainingData">Row-major training rows as given to the fit (not normalised).</param>
    /// <param name="rows">Number of training rows.</param>
    /// <param name="dims">Input dimension.</param>
    /// <param name="knn">The training kNN graph.</param>
    /// <param name="embedding">Row-major layout, rows x <see cref="UmapOptions.Components"/>.</param>
    /// <param name="a">Fitted curve parameter a.</param>
    /// <param name="b">Fitted curve parameter b.</param>
    public UmapModel(UmapOptions options, float[] trainingData, int rows, int dims, KnnGraph knn, float[] embedding, float a, float b)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (embedding.Length != (long)rows * options.Components)
            throw new ArgumentException("The embedding must hold rows x components values.", nameof(embedding));
        if (knn.Rows != rows)
            throw new ArgumentException("The kNN graph must have one row per training row.", nameof(knn));
        PreparedData.Validate(trainingData, rows, dims, "UMAP training data");
        Options = options;
        TrainingData = trainingData;
        Rows = rows;
        InputDimension = dims;
        Knn = knn;
        Embedding = embedding;
        A = a;
        B = b;
    }

    /// <summary>The options the model was fitted with.</summary>
    public UmapOptions Options { get; }

    /// <summary>The training rows, row-major.</summary>
    public float[] TrainingData { get; }

    /// <summary>Number of training rows.</summary>
    public int Rows { get; }

    /// <summary>Input dimension.</summary>
    public int InputDimension { get; }

    /// <summary>Output dimension.</summary>
    public int OutputDimension => Options.Components;

    /// <summary>The training kNN graph (neighbour 0 of each row is itself).</summary>
    public KnnGraph Knn { get; }

    /// <summary>The layout of the training rows, row-major <see cref="Rows"/> x <see cref="OutputDimension"/>.</summary>
    public float[] Embedding { get; }

    /// <summary>Fitted curve parameter a of <c>1 / (1 + a d^(2b))</c>.</summary>
    public float A { get; }

    /// <summary>Fitted curve parameter b.</summary>
    public float B { get; }

    /// <summary>Seconds spent finding neighbours during the fit (0 for a loaded model).</summary>
    public double KnnSeconds { get; init; }

    /// <summary>Seconds spent in the layout optimisation during the fit (0 for a loaded model).</summary>
    public double OptimizeSeconds { get; init; }

    /// <summary>
    /// Places new rows in the fitted layout as umap-learn's <c>transform</c> does: their neighbours among the training
    /// rows, memberships with <c>local_connectivity - 1</c>, initial position at the membership-weighted mean of the
    /// neighbours' positions, then the layout optimisation with the training layout frozen (100 epochs up to 10,000
    /// new rows, else 30; a third of <see cref="UmapOptions.Epochs"/> when that is set; learning rate / 4).
    /// </summary>
    /// <param name="data">Row-major new rows, <paramref name="rows"/> x <see cref="InputDimension"/>.</param>
    /// <param name="rows">Number of new rows.</param>
    /// <param name="progress">Optional progress.</param>
    /// <param name="cancellationToken">Cancels the work.</param>
    /// <returns>Row-major positions, <paramref name="rows"/> x <see cref="OutputDimension"/>.</returns>
    public float[] Transform(float[] data, int rows, IProgress<ProjectionProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(data);
        if (rows > 0 && data.Length != (long)rows * InputDimension)
            throw new ArgumentException($"UMAP transform: the model was fitted on {InputDimension}-dimensional rows, but {data.Length} values for {rows} rows were given ({(rows == 0 ? 0 : data.Length / (double)rows):0.##} per row).", nameof(data));
        if (rows == 0)
            return [];
        int k = Options.Neighbors, dim = OutputDimension;
        var prepared = Prepared();
        var queries = prepared.PrepareQueries(data, rows, "UMAP transform data");
        bool exact = UseExact(Options.KnnAlgorithm, Rows);
        if (!exact)
        {
            progress?.Report(new ProjectionProgress("index", 0));
            Search();
            progress?.Report(new ProjectionProgress("index", 1));
        }
        progress?.Report(new ProjectionProgress("knn", 0));
        KnnGraph knn = exact
            ? ExactKnn.Query(prepared, queries, rows, k, cancellationToken)
            : Search().Query(queries, rows, k, cancellationToken);
        progress?.Report(new ProjectionProgress("knn", 1));

        var (sigmas, rhos) = FuzzySimplicialSet.SmoothKnnDistances(knn, k, Math.Max(0.0, Options.LocalConnectivity - 1.0));
        var graph = FuzzySimplicialSet.MembershipStrengths(knn, sigmas, rhos, Rows, bipartite: true);

        // Initial positions: membership-weighted mean of the neighbours' positions.
        var embedding = new float[rows * dim];
        Parallel.For(0, rows, i =>
        {
            double total = 0;
            for (int e = graph.RowPointers[i]; e < graph.RowPointers[i + 1]; e++)
                total += graph.Values[e];
            for (int e = graph.RowPointers[i]; e < graph.RowPointers[i + 1]; e++)
            {
                float w = (float)(graph.Values[e] / total);
                int j = graph.ColumnIndices[e];
                for (int d = 0; d < dim; d++)
                    embedding[i * dim + d] += w * Embedding[j * dim + d];
            }
        });

        int epochs = Options.Epochs is int fitEpochs ? Math.Max(1, fitEpochs / 3) : rows <= 10000 ? 100 : 30;
        var pruned = graph.Prune(graph.MaxValue() / epochs);
        var heads = new int[pruned.NonZeros];
        for (int i = 0; i < rows; i++)
            heads.AsSpan(pruned.RowPointers[i], pruned.RowPointers[i + 1] - pruned.RowPointers[i]).Fill(i);
        var epochsPerSample = UmapOptimizer.EpochsPerSample(pruned.Values, epochs);
        var frozen = (float[])Embedding.Clone();
        UmapOptimizer.Optimize(embedding, frozen, heads, pruned.ColumnIndices, Rows, epochsPerSample, dim, A, B,
            Options.RepulsionStrength, Options.LearningRate / 4f, Options.NegativeSampleRate, epochs,
            moveOther: false, Options.Deterministic, Options.Seed + 1, cancellationToken,
            StageProgress.For(progress, "optimize"));
        return embedding;
    }

    internal static bool UseExact(KnnAlgorithm algorithm, int rows) =>
        algorithm == KnnAlgorithm.Exact || (algorithm == KnnAlgorithm.Auto && rows < 4096);

    private PreparedData Prepared()
    {
        lock (_searchLock)
            return _prepared ??= new PreparedData(TrainingData, Rows, InputDimension, Options.Metric, "UMAP training data");
    }

    private GraphSearch Search()
    {
        lock (_searchLock)
            return _search ??= new GraphSearch(Prepared(), Knn, Options.Seed);
    }

    internal void AttachPrepared(PreparedData prepared)
    {
        lock (_searchLock)
            _prepared = prepared;
    }
}
