using System.Diagnostics;
using Microsoft.ML.ActivationAtlas.Projection.Internal;
using Microsoft.ML.ActivationAtlas.Projection.Knn;

namespace Microsoft.ML.ActivationAtlas.Projection.Tsne;

/// <summary>
/// Barnes-Hut t-SNE (van der Maaten 2014) following scikit-learn's <c>TSNE(method="barnes_hut")</c>: perplexity-
/// calibrated affinities over the <c>3 * perplexity + 1</c> nearest neighbours, PCA initialisation, early
/// exaggeration with momentum 0.5, then momentum 0.8, per-coordinate gains, 1-D or 2-D output.
/// </summary>
public sealed class TsneReducer
{
    /// <summary>Creates a reducer (scikit-learn defaults when <paramref name="options"/> is null).</summary>
    /// <param name="options">The settings.</param>
    public TsneReducer(TsneOptions? options = null)
    {
        Options = options ?? new TsneOptions();
        Options.Validate();
    }

    /// <summary>The settings.</summary>
    public TsneOptions Options { get; }

    /// <summary>Fits a layout of the row-major rows.</summary>
    /// <param name="data">Row-major rows (kept by the model, not copied).</param>
    /// <param name="rows">Number of rows; more than 3 * perplexity + 1 is not required, but at least 4.</param>
    /// <param name="dims">Columns per row.</param>
    /// <param name="progress">Optional progress.</param>
    /// <param name="cancellationToken">Cancels the fit.</param>
    /// <exception cref="ArgumentException">Too few rows, non-finite values, a buffer of the wrong size, or all rows identical.</exception>
    public TsneModel Fit(float[] data, int rows, int dims, IProgress<ProjectionProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        var o = Options;
        if (rows < 4)
            throw new ArgumentException($"t-SNE needs at least 4 rows, but got {rows}.", nameof(rows));
        var prepared = new PreparedData(data, rows, dims, o.Metric, "t-SNE training data");
        bool allSame = true;
        for (int i = 1; i < rows && allSame; i++)
            allSame = prepared.Row(i).SequenceEqual(prepared.Row(0));
        if (allSame)
            throw new ArgumentException($"t-SNE training data: all {rows} rows are identical, so there is no structure to lay out.", nameof(data));
        if (o.Perplexity >= rows)
            throw new ArgumentException($"t-SNE: Perplexity ({o.Perplexity}) must be less than the number of rows ({rows}).", nameof(rows));

        int k = Math.Min(rows - 1, (int)(3 * o.Perplexity + 1)) + 1; // + the row itself
        var knn = Umap.UmapModel.UseExact(o.KnnAlgorithm, rows)
            ? ExactKnn.Build(prepared, k, cancellationToken, StageProgress.For(progress, "knn"))
            : NNDescent.Build(prepared, k, NNDescentSettings.For(rows, k, o.Seed), cancellationToken, StageProgress.For(progress, "knn"));
        var p = Affinities.Compute(knn, o.Perplexity, squareDistances: o.Metric == DistanceMetric.Euclidean);

        int dim = o.Components;
        float[] y;
        if (o.Initialization == TsneInitialization.Pca)
        {
            y = Pca.Scores(data, rows, dims, dim, o.Seed, cancellationToken);
            double mean = 0, sq = 0;
            for (int i = 0; i < rows; i++)
                mean += y[i * dim];
            mean /= rows;
            for (int i = 0; i < rows; i++)
                sq += (y[i * dim] - mean) * (y[i * dim] - mean);
            double std = Math.Sqrt(sq / rows);
            float scale = std > 0 ? (float)(1e-4 / std) : 1f;
            System.Numerics.Tensors.TensorPrimitives.Multiply(y, scale, y);
        }
        else
        {
            y = new float[rows * dim];
            var rng = Rng.ForStream(o.Seed, 23);
            for (int i = 0; i < y.Length; i++)
                y[i] = (float)(1e-4 * rng.NextGaussian());
        }

        float learningRate = o.LearningRate ?? Math.Max(rows / o.EarlyExaggeration / 4f, 50f);
        Optimize(y, rows, dim, p, o, learningRate, cancellationToken, StageProgress.For(progress, "optimize"));
        return new TsneModel(o, data, rows, dims, y);
    }

    private static void Optimize(float[] y, int n, int dim, Sparse.CsrGraph p, TsneOptions o, float learningRate, CancellationToken ct, IProgress<double>? progress)
    {
        var update = new float[n * dim];
        var gains = new float[n * dim];
        Array.Fill(gains, 1f);
        var grad = new float[n * dim];
        var zParts = new double[n];
        var tree = new BarnesHutTree(dim, n);
        const int block = 512;
        int blocks = (n + block - 1) / block;
        var po = new ParallelOptions { CancellationToken = ct };
        for (int it = 0; it < o.Iterations; it++)
        {
            ct.ThrowIfCancellationRequested();
            bool exaggerated = it < o.ExaggerationIterations;
            float exaggeration = exaggerated ? o.EarlyExaggeration : 1f;
            float momentum = exaggerated ? 0.5f : 0.8f;
            tree.Build(y, n);
            Parallel.For(0, blocks, po, () => new int[tree.StackSize], (b, _, stack) =>
            {
                Span<double> f = stackalloc double[2];
                for (int i = b * block; i < Math.Min(n, (b + 1) * block); i++)
                {
                    zParts[i] = tree.Repulsion(y, i, o.Theta, f, stack);
                    for (int d = 0; d < dim; d++)
                        grad[i * dim + d] = (float)-f[d]; // repulsion, normalised below
                }
                return stack;
            }, _ => { });
            double z = 0;
            for (int i = 0; i < n; i++)
                z += zParts[i];
            float invZ = (float)(1.0 / Math.Max(z, double.Epsilon));
            Parallel.For(0, blocks, po, b =>
            {
                for (int i = b * block; i < Math.Min(n, (b + 1) * block); i++)
                {
                    double a0 = 0, a1 = 0;
                    for (int e = p.RowPointers[i]; e < p.RowPointers[i + 1]; e++)
                    {
                        int j = p.ColumnIndices[e];
                        float d0 = y[i * dim] - y[j * dim];
                        float d1 = dim > 1 ? y[i * dim + 1] - y[j * dim + 1] : 0f;
                        float q = 1f / (1f + d0 * d0 + d1 * d1);
                        float w = p.Values[e] * exaggeration * q;
                        a0 += w * d0;
                        a1 += w * d1;
                    }
                    grad[i * dim] = 4f * ((float)a0 + grad[i * dim] * invZ);
                    if (dim > 1)
                        grad[i * dim + 1] = 4f * ((float)a1 + grad[i * dim + 1] * invZ);
                }
            });
            // All gradients are computed from the same positions before any point moves.
            Parallel.For(0, blocks, po, b =>
            {
                int t1 = Math.Min(n, (b + 1) * block) * dim;
                for (int t = b * block * dim; t < t1; t++)
                {
                    float g = grad[t];
                    bool sameSign = update[t] * g >= 0f;
                    gains[t] = sameSign ? Math.Max(gains[t] * 0.8f, o.MinGain) : gains[t] + 0.2f;
                    g *= gains[t];
                    update[t] = momentum * update[t] - learningRate * g;
                    y[t] += update[t];
                }
            });
            if (progress is not null && ((it + 1) % 25 == 0 || it + 1 == o.Iterations))
                progress.Report((double)(it + 1) / o.Iterations);
        }
    }
}
