using Microsoft.ML.ActivationAtlas.Projection.Internal;

namespace Microsoft.ML.ActivationAtlas.Projection.Quality;

/// <summary>Measures of how well a layout keeps the neighbourhoods of the input.</summary>
public static class EmbeddingQuality
{
    /// <summary>
    /// Trustworthiness (Venna and Kaski 2001), computed exactly as scikit-learn's
    /// <c>sklearn.manifold.trustworthiness</c>: 1 minus the normalised rank penalty of layout neighbours that are not
    /// input neighbours. 1 is perfect.
    /// </summary>
    /// <param name="input">Row-major input rows.</param>
    /// <param name="inputDims">Input columns.</param>
    /// <param name="layout">Row-major layout rows (same row order).</param>
    /// <param name="layoutDims">Layout columns.</param>
    /// <param name="k">Neighbourhood size (must be below n / 2).</param>
    /// <param name="metric">Input distance.</param>
    public static double Trustworthiness(float[] input, int inputDims, float[] layout, int layoutDims, int k, DistanceMetric metric = DistanceMetric.Euclidean)
    {
        int n = input.Length / inputDims;
        if (layout.Length != n * layoutDims)
            throw new ArgumentException("input and layout must have the same number of rows.");
        if (k >= n / 2.0)
            throw new ArgumentOutOfRangeException(nameof(k), k, $"k must be below n / 2 = {n / 2.0}.");
        var hi = new PreparedData(input, n, inputDims, metric, "trustworthiness input");
        var lo = new PreparedData(layout, n, layoutDims, DistanceMetric.Euclidean, "trustworthiness layout");
        double penalty = 0;
        object gate = new();
        Parallel.For(0, n, () => (Keys: new ulong[n], Rank: new int[n], Acc: 0.0), (i, _, s) =>
        {
            // Ranks in input space (1 = nearest other row); ties broken by index as a stable argsort would: each key
            // is the distance's order-preserving bit pattern above the row index, so the keys are distinct.
            for (int j = 0; j < n; j++)
                s.Keys[j] = SortKey(j == i ? float.NegativeInfinity : hi.Reduced(i, j), j);
            Array.Sort(s.Keys);
            for (int r = 0; r < n; r++)
                s.Rank[(int)(uint)s.Keys[r]] = r;
            // k nearest in the layout, ties again to the lower index.
            for (int j = 0; j < n; j++)
                s.Keys[j] = SortKey(j == i ? float.NegativeInfinity : lo.Reduced(i, j), j);
            Array.Sort(s.Keys);
            for (int t = 1; t <= k; t++)
            {
                int rank = s.Rank[(int)(uint)s.Keys[t]];
                if (rank > k)
                    s.Acc += rank - k;
            }
            return s;
        }, s => { lock (gate) penalty += s.Acc; });
        return 1.0 - penalty * (2.0 / (n * k * (2.0 * n - 3.0 * k - 1.0)));
    }

    /// <summary>A key that sorts by <paramref name="distance"/>, then by <paramref name="index"/>.</summary>
    private static ulong SortKey(float distance, int index)
    {
        uint bits = BitConverter.SingleToUInt32Bits(distance);
        // Order-preserving map of IEEE floats to unsigned integers: flip all bits of negatives, the sign bit of the rest.
        bits = (bits & 0x8000_0000u) != 0 ? ~bits : bits | 0x8000_0000u;
        return ((ulong)bits << 32) | (uint)index;
    }

    /// <summary>
    /// Accuracy of a k-nearest-neighbour majority-vote classifier in the layout, by <paramref name="folds"/>-fold
    /// cross-validation over a seeded permutation (ties go to the smallest label, as scikit-learn's).
    /// </summary>
    /// <param name="layout">Row-major layout rows.</param>
    /// <param name="dims">Layout columns.</param>
    /// <param name="labels">Class of each row (0 to 255).</param>
    /// <param name="k">Neighbours voting (10 by convention).</param>
    /// <param name="folds">Number of folds.</param>
    /// <param name="seed">Seed of the permutation.</param>
    public static double KnnAccuracy(float[] layout, int dims, ReadOnlySpan<byte> labels, int k = 10, int folds = 3, int seed = 0)
    {
        int n = labels.Length;
        var lab = labels.ToArray();
        var perm = Enumerable.Range(0, n).ToArray();
        var rng = Rng.ForStream(seed, 31);
        for (int i = n - 1; i > 0; i--)
        {
            int j = rng.NextInt(i + 1);
            (perm[i], perm[j]) = (perm[j], perm[i]);
        }
        long correct = 0;
        Span<int> votes = stackalloc int[256];
        for (int f = 0; f < folds; f++)
        {
            int t0 = (int)((long)n * f / folds), t1 = (int)((long)n * (f + 1) / folds);
            var train = perm.Take(t0).Concat(perm.Skip(t1)).ToArray();
            var test = perm[t0..t1];
            var trainData = new float[train.Length * dims];
            for (int i = 0; i < train.Length; i++)
                Array.Copy(layout, train[i] * dims, trainData, i * dims, dims);
            var prepared = new PreparedData(trainData, train.Length, dims, DistanceMetric.Euclidean, "layout");
            var queries = new float[test.Length * dims];
            for (int i = 0; i < test.Length; i++)
                Array.Copy(layout, test[i] * dims, queries, i * dims, dims);
            var knn = Knn.ExactKnn.Query(prepared, queries, test.Length, k, CancellationToken.None);
            for (int i = 0; i < test.Length; i++)
            {
                votes.Clear();
                for (int t = 0; t < k; t++)
                    votes[lab[train[knn.Indices[i * k + t]]]]++;
                int best = 0;
                for (int c = 1; c < 256; c++)
                {
                    if (votes[c] > votes[best])
                        best = c;
                }
                if (best == lab[test[i]])
                    correct++;
            }
        }
        return (double)correct / n;
    }
}
