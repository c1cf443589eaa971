using Microsoft.ML.ActivationAtlas.Projection.Internal;

namespace Microsoft.ML.ActivationAtlas.Projection.Knn;

/// <summary>Exact k nearest neighbours by blocked brute force (SIMD kernels, parallel over query blocks).</summary>
internal static class ExactKnn
{
    private const int QueryBlock = 16;
    private const int TrainTile = 512;

    /// <summary>The exact kNN graph of the data with itself; neighbour 0 is the row itself.</summary>
    public static KnnGraph Build(PreparedData data, int k, CancellationToken ct, IProgress<double>? progress = null)
        => Search(data, data.Data, data.Rows, k, self: true, ct, progress);

    /// <summary>The exact k nearest training rows of each (prepared) query row.</summary>
    public static KnnGraph Query(PreparedData data, float[] queries, int queryRows, int k, CancellationToken ct)
        => Search(data, queries, queryRows, k, self: false, ct, null);

    private static KnnGraph Search(PreparedData data, float[] queries, int queryRows, int k, bool self, CancellationToken ct, IProgress<double>? progress)
    {
        int n = data.Rows, dims = data.Dims;
        var idx = new int[queryRows * k];
        var dist = new float[queryRows * k];
        NeighborHeap.Init(idx, dist, null);
        int blocks = (queryRows + QueryBlock - 1) / QueryBlock;
        int done = 0;
        Parallel.For(0, blocks, new ParallelOptions { CancellationToken = ct }, b =>
        {
            int q0 = b * QueryBlock, q1 = Math.Min(queryRows, q0 + QueryBlock);
            if (self)
            {
                for (int q = q0; q < q1; q++)
                    NeighborHeap.PushUnchecked(dist.AsSpan(q * k, k), idx.AsSpan(q * k, k), -1f, q);
            }
            for (int t0 = 0; t0 < n; t0 += TrainTile)
            {
                int t1 = Math.Min(n, t0 + TrainTile);
                for (int q = q0; q < q1; q++)
                {
                    var qRow = new ReadOnlySpan<float>(queries, q * dims, dims);
                    var hd = dist.AsSpan(q * k, k);
                    var hi = idx.AsSpan(q * k, k);
                    for (int j = t0; j < t1; j++)
                    {
                        if (self && j == q)
                            continue;
                        float d = data.Reduced(qRow, data.Row(j));
                        if (d < hd[0])
                            NeighborHeap.PushUnchecked(hd, hi, d, j);
                    }
                }
            }
            for (int q = q0; q < q1; q++)
            {
                var hd = dist.AsSpan(q * k, k);
                NeighborHeap.Sort(hd, idx.AsSpan(q * k, k));
                for (int t = 0; t < k; t++)
                    hd[t] = hd[t] < 0f ? 0f : data.ToTrue(hd[t]);
            }
            if (progress is not null)
                progress.Report((double)Interlocked.Increment(ref done) / blocks);
        });
        return new KnnGraph(idx, dist, queryRows, k);
    }
}
