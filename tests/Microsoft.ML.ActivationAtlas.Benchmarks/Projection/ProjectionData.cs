using Microsoft.ML.ActivationAtlas.Datasets;

namespace Microsoft.ML.ActivationAtlas.Benchmarks.Projection;

/// <summary>Data sets for the projection benchmarks.</summary>
internal static class ProjectionData
{
    /// <summary>The first <paramref name="n"/> of the 70,000 Fashion-MNIST images (train then test), pixels in [0, 1].</summary>
    public static (float[] Data, byte[] Labels, int Dims) FashionMnist(int n)
    {
        var all = Datasets.FashionMnist.LoadAll();
        if (n > all.Count)
            throw new ArgumentException($"--n {n}: Fashion-MNIST has {all.Count} images.");
        return (all.Pixels.AsSpan(0, n * Datasets.FashionMnist.PixelCount).ToArray(), all.Labels.AsSpan(0, n).ToArray(), Datasets.FashionMnist.PixelCount);
    }

    /// <summary>Gaussian clusters: <paramref name="clusters"/> random centres (N(0, 1) per coordinate), points N(centre, 0.25).</summary>
    public static (float[] Data, byte[] Labels, int Dims) Synthetic(int n, int dims, int clusters, int seed)
    {
        var data = new float[(long)n * dims];
        var labels = new byte[n];
        var centres = new float[clusters * dims];
        var rng = new Random(seed);
        for (int i = 0; i < centres.Length; i++)
            centres[i] = (float)Gaussian(rng);
        Parallel.For(0, (n + 8191) / 8192, b =>
        {
            var r = new Random(seed * 7919 + b);
            for (int i = b * 8192; i < Math.Min(n, (b + 1) * 8192); i++)
            {
                int c = r.Next(clusters);
                labels[i] = (byte)c;
                for (int d = 0; d < dims; d++)
                    data[(long)i * dims + d] = centres[c * dims + d] + 0.25f * (float)Gaussian(r);
            }
        });
        return (data, labels, dims);
    }

    /// <summary>The first <paramref name="count"/> indices of a permutation of 0..n-1 seeded by <paramref name="seed"/>.</summary>
    public static int[] Subsample(int n, int count, int seed)
    {
        var perm = Enumerable.Range(0, n).ToArray();
        new Random(seed).Shuffle(perm);
        return perm[..Math.Min(count, n)];
    }

    public static float[] Rows(float[] data, int dims, int[] rows)
    {
        var result = new float[rows.Length * dims];
        for (int i = 0; i < rows.Length; i++)
            Array.Copy(data, (long)rows[i] * dims, result, (long)i * dims, dims);
        return result;
    }

    private static double Gaussian(Random r) => Math.Sqrt(-2 * Math.Log(1 - r.NextDouble())) * Math.Cos(2 * Math.PI * r.NextDouble());
}
