namespace Microsoft.ML.ActivationAtlas.Tests.Inversion;

/// <summary>Seeded Lloyd k-means (k-means++ start) for grouping activation vectors in tests and benchmarks.</summary>
internal static class KMeans
{
    public static (float[][] Centroids, int[] Assignment) Fit(IReadOnlyList<float[]> points, int k, int seed, int iterations = 25)
    {
        var random = new Random(seed);
        int d = points[0].Length;
        var centroids = new List<float[]> { (float[])points[random.Next(points.Count)].Clone() };
        var dist = points.Select(p => Distance(p, centroids[0])).ToArray();
        while (centroids.Count < k)
        {
            double total = dist.Sum(), u = random.NextDouble() * total;
            int pick = 0;
            for (double acc = 0; pick < points.Count - 1; pick++)
            {
                acc += dist[pick];
                if (acc >= u)
                    break;
            }
            centroids.Add((float[])points[pick].Clone());
            for (int i = 0; i < points.Count; i++)
                dist[i] = Math.Min(dist[i], Distance(points[i], centroids[^1]));
        }
        var assignment = new int[points.Count];
        for (int it = 0; it < iterations; it++)
        {
            Parallel.For(0, points.Count, i =>
            {
                double best = double.MaxValue;
                for (int j = 0; j < k; j++)
                {
                    double dj = Distance(points[i], centroids[j]);
                    if (dj < best)
                    {
                        best = dj;
                        assignment[i] = j;
                    }
                }
            });
            for (int j = 0; j < k; j++)
            {
                var sum = new double[d];
                int count = 0;
                for (int i = 0; i < points.Count; i++)
                    if (assignment[i] == j)
                    {
                        count++;
                        for (int c = 0; c < d; c++)
                            sum[c] += points[i][c];
                    }
                if (count > 0)
                    centroids[j] = sum.Select(v => (float)(v / count)).ToArray();
            }
        }
        return (centroids.ToArray(), assignment);
    }

    private static double Distance(float[] a, float[] b)
    {
        double s = 0;
        for (int i = 0; i < a.Length; i++)
        {
            double t = a[i] - b[i];
            s += t * t;
        }
        return s;
    }
}
