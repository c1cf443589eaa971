using Microsoft.ML.ActivationAtlas.Projection.Internal;
using Microsoft.ML.ActivationAtlas.Projection.Tsne;

namespace Microsoft.ML.ActivationAtlas.Projection.Umap;

/// <summary>
/// Where the connected components of the fuzzy graph go relative to each other (umap-learn 0.5's
/// <c>component_layout</c> and the meta layout of <c>multi_component_layout</c>). Up to <c>2 * dim</c> components sit
/// at <c>+e_1, ..., +e_k, -e_1, ..., -e_k</c>; more components get a spectral embedding of their centroids: the
/// affinity <c>exp(-d^2)</c> of the pairwise centroid distances (in the fit's metric), its normalised Laplacian's
/// eigenvectors with the smallest non-trivial eigenvalues divided by <c>sqrt(degree)</c> (sklearn's
/// <c>SpectralEmbedding</c> with a precomputed affinity), each sign-flipped so its largest-magnitude entry is positive,
/// and the whole divided by its maximum.
/// </summary>
internal static class ComponentLayout
{
    /// <summary>
    /// Largest squared distance kept as is in <c>exp(-d^2)</c>: beyond it the affinity leaves the normal double
    /// range and, once every affinity of a centroid underflows to zero, its degree is zero (umap-learn then divides
    /// by zero). When the nearest other centroid of some component is farther than <c>sqrt</c> of this, all squared
    /// distances are scaled down by the same factor, just enough to keep that nearest affinity representable.
    /// </summary>
    internal const double MaxSquaredDistance = 600;

    /// <summary>Row-major <c>count x dim</c> positions of the components.</summary>
    public static double[] Compute(PreparedData data, int[] labels, int count, int dim, int seed, CancellationToken ct)
    {
        if (count <= 2 * dim)
            return AxisLayout(count, dim);
        var centroids = Centroids(data, labels, count);
        if (count > MaxSpectralComponents)
            return PrincipalLayout(centroids, count, data.Dims, data.Metric, dim, seed, ct);
        var squared = SquaredDistances(centroids, count, data.Dims, data.Metric, ct);
        return SpectralMetaLayout(squared, count, dim, seed, ct) ?? RandomFallback(count, dim, seed);
    }

    /// <summary>
    /// Most components given the dense centroid embedding (its <c>count^2</c> affinity matrix is 512 MiB here).
    /// Beyond it the components are placed by the leading principal components of their centroids instead.
    /// </summary>
    internal const int MaxSpectralComponents = 8192;

    /// <summary>umap-learn's layout for few components: <c>vstack([I_k 0], -[I_k 0])[:count]</c>, k = ceil(count / 2).</summary>
    internal static double[] AxisLayout(int count, int dim)
    {
        var meta = new double[count * dim];
        int half = (count + 1) / 2;
        for (int c = 0; c < count; c++)
        {
            int axis = c % half;
            if (axis < dim)
                meta[c * dim + axis] = c < half ? 1 : -1;
        }
        return meta;
    }

    /// <summary>
    /// The mean of each component's rows as prepared for the metric (L2-normalised for cosine), row-major
    /// <c>count x dims</c>.
    /// </summary>
    internal static double[] Centroids(PreparedData data, int[] labels, int count)
    {
        int n = data.Rows, dims = data.Dims;
        var centroids = new double[count * dims];
        var sizes = new int[count];
        for (int i = 0; i < n; i++)
        {
            int c = labels[i];
            sizes[c]++;
            var row = data.Row(i);
            var sum = centroids.AsSpan(c * dims, dims);
            for (int d = 0; d < dims; d++)
                sum[d] += row[d];
        }
        for (int c = 0; c < count; c++)
            System.Numerics.Tensors.TensorPrimitives.Multiply(centroids.AsSpan(c * dims, dims), 1.0 / sizes[c], centroids.AsSpan(c * dims, dims));
        return centroids;
    }

    /// <summary>
    /// Squared pairwise distances between the centroids in the fit's metric: euclidean, or cosine distance
    /// <c>1 - cos</c> for cosine (a zero centroid is at cosine distance 1 from all others, as in sklearn's
    /// <c>pairwise_distances</c>).
    /// </summary>
    internal static double[] SquaredDistances(double[] centroids, int count, int dims, DistanceMetric metric, CancellationToken ct)
    {
        var norms = new double[count];
        for (int c = 0; c < count; c++)
            norms[c] = System.Numerics.Tensors.TensorPrimitives.Norm<double>(centroids.AsSpan(c * dims, dims));
        bool cosine = metric == DistanceMetric.Cosine;
        var squared = new double[(long)count * count];
        Parallel.For(0, count, new ParallelOptions { CancellationToken = ct }, i =>
        {
            var ci = new ReadOnlySpan<double>(centroids, i * dims, dims);
            for (int j = i + 1; j < count; j++)
            {
                var cj = new ReadOnlySpan<double>(centroids, j * dims, dims);
                double d2;
                if (cosine)
                {
                    double denom = norms[i] * norms[j];
                    double d = denom > 0 ? Math.Clamp(1 - System.Numerics.Tensors.TensorPrimitives.Dot(ci, cj) / denom, 0, 2) : 1;
                    d2 = d * d;
                }
                else
                {
                    d2 = 0;
                    for (int t = 0; t < dims; t++)
                        d2 += (ci[t] - cj[t]) * (ci[t] - cj[t]);
                }
                squared[(long)i * count + j] = d2;
                squared[(long)j * count + i] = d2;
            }
        });
        return squared;
    }

    /// <summary>
    /// For more than <see cref="MaxSpectralComponents"/> components: the leading principal component scores of the
    /// centroids (L2-normalised first for cosine), divided by their largest magnitude.
    /// </summary>
    internal static double[] PrincipalLayout(double[] centroids, int count, int dims, DistanceMetric metric, int dim, int seed, CancellationToken ct)
    {
        var rows = new float[centroids.Length];
        for (int c = 0; c < count; c++)
        {
            var src = centroids.AsSpan(c * dims, dims);
            double norm = metric == DistanceMetric.Cosine ? System.Numerics.Tensors.TensorPrimitives.Norm<double>(src) : 1;
            for (int d = 0; d < dims; d++)
                rows[c * dims + d] = (float)(norm > 0 ? src[d] / norm : 0);
        }
        var scores = Pca.Scores(rows, count, dims, Math.Min(dim, dims), seed, ct);
        var meta = new double[count * dim];
        int k = Math.Min(dim, dims);
        double max = 0;
        for (int c = 0; c < count; c++)
        {
            for (int d = 0; d < k; d++)
            {
                meta[c * dim + d] = scores[c * k + d];
                max = Math.Max(max, Math.Abs(scores[c * k + d]));
            }
        }
        if (!(max > 0) || !double.IsFinite(max))
            return RandomFallback(count, dim, seed);
        for (int i = 0; i < meta.Length; i++)
            meta[i] /= max;
        return meta;
    }

    /// <summary>
    /// The spectral embedding of the affinity <c>exp(-squared)</c> (diagonal ignored, as scipy's Laplacian does);
    /// null when the eigen-solve fails. Overwrites <paramref name="squared"/>.
    /// </summary>
    internal static double[]? SpectralMetaLayout(double[] squared, int count, int dim, int seed, CancellationToken ct)
    {
        // Scale down only when some component's nearest affinity would leave the normal double range.
        double worstNearest = 0;
        for (int i = 0; i < count; i++)
        {
            double nearest = double.PositiveInfinity;
            for (int j = 0; j < count; j++)
            {
                if (j != i)
                    nearest = Math.Min(nearest, squared[i * count + j]);
            }
            worstNearest = Math.Max(worstNearest, nearest);
        }
        double factor = worstNearest > MaxSquaredDistance ? MaxSquaredDistance / worstNearest : 1;

        // The affinity overwrites the squared distances (one count^2 buffer).
        var affinity = squared;
        var degree = new double[count];
        for (int i = 0; i < count; i++)
        {
            for (int j = 0; j < count; j++)
            {
                double w = j == i ? 0 : Math.Exp(-factor * squared[i * count + j]);
                affinity[i * count + j] = w;
                degree[i] += w;
            }
        }
        if (!SpectralLayout.TryDegreeScaling(degree, out var invSqrt, out var trivial))
            return null;
        // D^-1/2 W D^-1/2, whose largest eigenvalues are the smallest of the normalised Laplacian I - D^-1/2 W D^-1/2.
        for (int i = 0; i < count; i++)
        {
            for (int j = 0; j < count; j++)
                affinity[i * count + j] *= invSqrt[i] * invSqrt[j];
        }
        void MatVec(double[] x, double[] y)
        {
            for (int i = 0; i < count; i++)
                y[i] = System.Numerics.Tensors.TensorPrimitives.Dot<double>(new ReadOnlySpan<double>(affinity, i * count, count), x);
        }
        var vectors = Lanczos.TopEigenvectors(MatVec, count, dim, trivial, seed, ct, tolerance: 1e-8);
        if (vectors is null)
            return null;

        // sklearn: embedding / dd, then each vector's sign makes its largest-magnitude entry positive; umap-learn then
        // divides by the overall maximum.
        var meta = new double[count * dim];
        double max = double.NegativeInfinity;
        for (int d = 0; d < dim; d++)
        {
            int argMax = 0;
            double best = -1;
            for (int i = 0; i < count; i++)
            {
                double v = vectors[d * count + i] * invSqrt[i];
                if (!double.IsFinite(v))
                    return null;
                vectors[d * count + i] = v;
                if (Math.Abs(v) > best)
                {
                    best = Math.Abs(v);
                    argMax = i;
                }
            }
            double sign = vectors[d * count + argMax] < 0 ? -1 : 1;
            for (int i = 0; i < count; i++)
            {
                double v = sign * vectors[d * count + i];
                meta[i * dim + d] = v;
                max = Math.Max(max, v);
            }
        }
        if (!(max > 0))
            return null;
        for (int i = 0; i < meta.Length; i++)
            meta[i] /= max;
        return meta;
    }

    /// <summary>When the centroid embedding fails: uniform in [0, 1)^dim (umap-learn's guess when it has no data).</summary>
    private static double[] RandomFallback(int count, int dim, int seed)
    {
        var rng = Rng.ForStream(seed, 6);
        var meta = new double[count * dim];
        for (int i = 0; i < meta.Length; i++)
            meta[i] = rng.NextDouble();
        return meta;
    }
}
