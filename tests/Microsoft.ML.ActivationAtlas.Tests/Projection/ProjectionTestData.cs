using Microsoft.ML.ActivationAtlas.Datasets;
using Microsoft.ML.ActivationAtlas.Projection;
using Microsoft.ML.ActivationAtlas.Projection.Internal;
using Microsoft.ML.ActivationAtlas.Projection.Knn;

namespace Microsoft.ML.ActivationAtlas.Tests.Projection;

/// <summary>Shared, seeded data for the projection tests.</summary>
internal static class ProjectionTestData
{
    private static readonly Lazy<FashionMnist> s_train = new(() => FashionMnist.Load(FashionMnistSplit.Train, maxImages: 4000));

    /// <summary>The first <paramref name="n"/> Fashion-MNIST training images (pixels in [0, 1]) and labels.</summary>
    public static (float[] Data, byte[] Labels) Fashion(int n, int skip = 0)
    {
        var t = s_train.Value;
        return (t.Pixels.AsSpan(skip * FashionMnist.PixelCount, n * FashionMnist.PixelCount).ToArray(), t.Labels.AsSpan(skip, n).ToArray());
    }

    /// <summary>
    /// Well-separated clusters with a 2-D structure inside each: centres drawn N(0, 10^2) per coordinate, points
    /// centre + u a + v b + N(0, 0.05^2) with u, v ~ N(0, 1) along two random directions a, b of the cluster;
    /// labels = cluster.
    /// </summary>
    public static (float[] Data, byte[] Labels) Blobs(int n, int dims, int clusters, int seed)
    {
        var rng = new Random(seed);
        var centres = new float[clusters * dims];
        var axes = new float[clusters * 2 * dims];
        for (int i = 0; i < centres.Length; i++)
            centres[i] = 10f * Gaussian(rng);
        for (int i = 0; i < axes.Length; i++)
            axes[i] = Gaussian(rng) / MathF.Sqrt(dims);
        var data = new float[n * dims];
        var labels = new byte[n];
        for (int i = 0; i < n; i++)
        {
            int c = i % clusters;
            labels[i] = (byte)c;
            float u = Gaussian(rng), v = Gaussian(rng);
            for (int d = 0; d < dims; d++)
                data[i * dims + d] = centres[c * dims + d] + u * axes[(2 * c) * dims + d] + v * axes[(2 * c + 1) * dims + d] + 0.05f * Gaussian(rng);
        }
        return (data, labels);
    }

    public static float Gaussian(Random r) => (float)(Math.Sqrt(-2 * Math.Log(1 - r.NextDouble())) * Math.Cos(2 * Math.PI * r.NextDouble()));

    /// <summary>Mean over rows of the distance between row i of a and row i of b.</summary>
    public static double MeanRowDistance(float[] a, float[] b, int dim, int rows)
    {
        double s = 0;
        for (int i = 0; i < rows; i++)
        {
            double d2 = 0;
            for (int d = 0; d < dim; d++)
                d2 += (a[i * dim + d] - b[i * dim + d]) * (a[i * dim + d] - b[i * dim + d]);
            s += Math.Sqrt(d2);
        }
        return s / rows;
    }

    /// <summary>Largest extent of the layout over its axes.</summary>
    public static double Extent(float[] layout, int dim)
    {
        double extent = 0;
        for (int d = 0; d < dim; d++)
        {
            float min = float.MaxValue, max = float.MinValue;
            for (int i = d; i < layout.Length; i += dim)
            {
                min = Math.Min(min, layout[i]);
                max = Math.Max(max, layout[i]);
            }
            extent = Math.Max(extent, max - min);
        }
        return extent;
    }

    /// <summary>
    /// How well new rows are placed: <c>Neighbours</c> is the median over new rows of the median layout distance from
    /// a row's placed position to the layout positions of its <paramref name="k"/> exact nearest training rows in the
    /// input space; <c>Random</c> is the median layout distance between 4,000 random pairs of training positions.
    /// A placement that ignores the input (every row at the median, say) has Neighbours near Random.
    /// </summary>
    public static (double Neighbours, double Random) PlacementSpread(float[] train, float[] fresh, int dims, float[] embedding, float[] placed, int layoutDims, int k = 10, DistanceMetric metric = DistanceMetric.Euclidean)
    {
        int n = train.Length / dims, m = fresh.Length / dims;
        var prepared = new PreparedData(train, n, dims, metric);
        var exact = ExactKnn.Query(prepared, prepared.PrepareQueries(fresh, m, "fresh"), m, k, CancellationToken.None);
        double LayoutDistance(float[] a, int i, float[] b, int j)
        {
            double d2 = 0;
            for (int d = 0; d < layoutDims; d++)
                d2 += (a[i * layoutDims + d] - b[j * layoutDims + d]) * (double)(a[i * layoutDims + d] - b[j * layoutDims + d]);
            return Math.Sqrt(d2);
        }
        var perRow = new double[m];
        for (int i = 0; i < m; i++)
            perRow[i] = Median(Enumerable.Range(0, k).Select(t => LayoutDistance(placed, i, embedding, exact.Indices[i * k + t])).ToArray());
        var rng = new Random(11);
        var pairs = Enumerable.Range(0, 4000).Select(_ => LayoutDistance(embedding, rng.Next(n), embedding, rng.Next(n))).ToArray();
        return (Median(perRow), Median(pairs));
    }

    public static double Median(double[] values)
    {
        var sorted = values.Order().ToArray();
        return sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : 0.5 * (sorted[sorted.Length / 2 - 1] + sorted[sorted.Length / 2]);
    }
}
