using System.Diagnostics;
using Microsoft.ML.ActivationAtlas.Projection.Internal;
using Microsoft.ML.ActivationAtlas.Projection.Knn;

namespace Microsoft.ML.ActivationAtlas.Projection.Tsne;

/// <summary>
/// Barnes-Hut t-SNE (van der Maaten 2014) following scikit-learn's <c>TSNE(method="barnes_hut")</c>: perplexity-
/// calibrated affinities over the <c>3 * perplexity + 1</c> nearest neighbours, PCA initialisation, early
/// exaggeration with momentum 0.5, then momentum 0.8, per-coordinate gains, 1-D or 2-D output. For small data two
/// things follow openTSNE rather than scikit-learn: the perplexity is lowered to <c>(n - 1) / 3</c> when there are too
/// few rows for it, and no point moves more than <see cref="TsneOptions.MaxStepNorm"/> in one iteration; and below 200
/// rows the automatic learning rate is <c>n / 4</c> rather than 50 (see <see cref="TsneOptions.LearningRate"/>).
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
    /// <param name="rows">Number of rows, at least 4; below <c>3 * perplexity + 1</c> the perplexity is lowered to <c>(rows - 1) / 3</c> (see <see cref="EffectivePerplexity"/>).</param>
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
        double perplexity = EffectivePerplexity(o.Perplexity, rows);
        int k = Math.Min(rows - 1, (int)(3 * perplexity + 1)) + 1; // + the row itself
        var knn = Umap.UmapModel.UseExact(o.KnnAlgorithm, rows)
            ? ExactKnn.Build(prepared, k, cancellationToken, StageProgress.For(progress, "knn"))
            : NNDescent.Build(prepared, k, NNDescentSettings.For(rows, k, o.Seed), cancellationToken, StageProgress.For(progress, "knn"));
        var p = Affinities.Compute(knn, perplexity, squareDistances: o.Metric == DistanceMetric.Euclidean);

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

        float learningRate = o.LearningRate ?? AutoLearningRate(rows, o.EarlyExaggeration);
        Optimize(y, rows, dim, p, o, learningRate, cancellationToken, StageProgress.For(progress, "optimize"));
        return new TsneModel(o, data, rows, dims, y);
    }

    /// <summary>
    /// The perplexity used for <paramref name="rows"/> rows: <paramref name="perplexity"/>, lowered to
    /// <c>(rows - 1) / 3</c> when the <c>3 * perplexity</c> neighbours it needs are more than the other rows (openTSNE's rule).
    /// </summary>
    /// <param name="perplexity">The requested perplexity.</param>
    /// <param name="rows">Number of rows.</param>
    public static double EffectivePerplexity(double perplexity, int rows) => Math.Min(perplexity, (rows - 1) / 3.0);

    /// <summary>
    /// The "auto" learning rate: scikit-learn's <c>max(n / EarlyExaggeration / 4, 50)</c>, except that below 200 rows
    /// the floor is <c>n / 4</c> instead of 50. P sums to 1, so each point's gradient is of order <c>4 / n</c>: the
    /// floor of 50 makes a step of order <c>200 / n</c>, which for a few dozen rows throws points far past their
    /// neighbours every iteration (scikit-learn's own layouts of 20 Fashion-MNIST rows spread over hundreds of units),
    /// while <c>n / 4</c> keeps it at the size it has at 200 rows.
    /// </summary>
    internal static float AutoLearningRate(int rows, float earlyExaggeration) =>
        Math.Max(rows / earlyExaggeration / 4f, Math.Min(50f, rows / 4f));

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
            float maxStep = o.MaxStepNorm ?? float.PositiveInfinity;
            Parallel.For(0, blocks, po, b =>
            {
                int i1 = Math.Min(n, (b + 1) * block);
                for (int i = b * block; i < i1; i++)
                {
                    float norm2 = 0f;
                    for (int t = i * dim; t < (i + 1) * dim; t++)
                    {
                        float g = grad[t];
                        bool sameSign = update[t] * g >= 0f;
                        gains[t] = sameSign ? Math.Max(gains[t] * 0.8f, o.MinGain) : gains[t] + 0.2f;
                        update[t] = momentum * update[t] - learningRate * gains[t] * g;
                        norm2 += update[t] * update[t];
                    }
                    // openTSNE's max_step_norm: no point moves farther than this in one iteration.
                    float shrink = norm2 > maxStep * maxStep ? maxStep / MathF.Sqrt(norm2) : 1f;
                    for (int t = i * dim; t < (i + 1) * dim; t++)
                    {
                        update[t] *= shrink;
                        y[t] += update[t];
                    }
                }
            });
            if (progress is not null && ((it + 1) % 25 == 0 || it + 1 == o.Iterations))
                progress.Report((double)(it + 1) / o.Iterations);
        }
    }
}
