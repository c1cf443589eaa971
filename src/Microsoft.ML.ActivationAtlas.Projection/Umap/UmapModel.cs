using System.Diagnostics;
using Microsoft.ML.ActivationAtlas.Projection.Internal;
using Microsoft.ML.ActivationAtlas.Projection.Knn;

namespace Microsoft.ML.ActivationAtlas.Projection.Umap;

/// <summary>
/// A fitted UMAP: the layout of the training rows, plus what <see cref="Transform(float[], int, IProgress{ProjectionProgress}?, CancellationToken)"/> needs to place new rows
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
    public float[] Transform(float[] data, int rows, IProgress<ProjectionProgress>? progress = null, CancellationToken cancellationToken = default) =>
        Transform(data, rows, 0, rows, progress, cancellationToken);

    /// <summary>
    /// Places rows that are part of a larger set of new rows: rows <paramref name="firstRowIndex"/> onwards of
    /// <paramref name="totalRows"/>. A row's place depends only on the model, the row and its index in the whole set
    /// (its random negative samples are drawn from a stream keyed by that index, and the epoch count follows the whole
    /// set's size as in umap-learn), so transforming the parts of a set gives the same places as transforming the set.
    /// </summary>
    /// <param name="data">Row-major values, <paramref name="rows"/> x <see cref="InputDimension"/>.</param>
    /// <param name="rows">Number of rows given.</param>
    /// <param name="firstRowIndex">The index of the first given row in the whole set.</param>
    /// <param name="totalRows">The number of rows of the whole set.</param>
    /// <param name="progress">Optional progress.</param>
    /// <param name="cancellationToken">Cancels the work.</param>
    /// <returns>Row-major positions, <paramref name="rows"/> x <see cref="OutputDimension"/>.</returns>
    public float[] Transform(float[] data, int rows, long firstRowIndex, long totalRows, IProgress<ProjectionProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(firstRowIndex);
        if (totalRows < firstRowIndex + rows)
            throw new ArgumentOutOfRangeException(nameof(totalRows), totalRows, $"The whole set ({totalRows} rows) must hold rows {firstRowIndex} to {firstRowIndex + rows - 1}.");
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

        int epochs = Options.Epochs is int fitEpochs ? Math.Max(1, fitEpochs / 3) : totalRows <= 10000 ? 100 : 30;
        // Each row's strongest membership is 1 (its nearest neighbour, with local connectivity 1), so pruning and
        // sampling relative to 1 match umap-learn's relative-to-the-maximum rule without depending on the other rows.
        const float maxMembership = 1f;
        var pruned = graph.Prune(maxMembership / epochs);
        var epochsPerSample = UmapOptimizer.EpochsPerSample(pruned.Values, epochs, maxMembership);
        var frozen = (float[])Embedding.Clone();
        UmapOptimizer.OptimizeIndependentRows(embedding, frozen, pruned.RowPointers, pruned.ColumnIndices, Rows, epochsPerSample, dim, A, B,
            Options.RepulsionStrength, Options.LearningRate / 4f, Options.NegativeSampleRate, epochs,
            Options.Seed + 1, firstRowIndex, cancellationToken, StageProgress.For(progress, "optimize"));
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
