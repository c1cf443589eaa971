using Microsoft.ML.ActivationAtlas.Projection.Internal;

namespace Microsoft.ML.ActivationAtlas.Projection.Knn;

/// <summary>
/// The graph the query search walks, prepared from the training kNN graph as pynndescent's <c>_init_search_graph</c>
/// does (with umap-learn's settings: prune probability 1, <c>pruning_degree_multiplier</c> 1.5):
/// <list type="number">
/// <item>Forward diversification: each row keeps its neighbours in increasing distance, dropping a neighbour c when a
/// neighbour b already kept (at non-zero distance) is closer to c than the row is (the relative neighbourhood rule of
/// Harwood and Drummond's FANNG).</item>
/// <item>The reverse graph of what is left, kept whole. (pynndescent 0.5 also calls <c>diversify_csr</c> on the
/// reverse graph, but hands it the transpose's CSC buffers, which are the forward rows again, already diversified: it
/// removes nothing, as its verbose log's equal edge counts show. Keeping the reverse edges whole gives its graph.)</item>
/// <item>Their union without self-loops, each row longer than the cap <c>round(1.5 k)</c> then cut as
/// <c>degree_prune</c> does: it keeps every edge not longer than its (cap + 1)-th shortest, so cap + 1 edges when the
/// distances differ.</item>
/// </list>
/// Distances are the reduced ones (squared euclidean, <c>1 - cos</c>), which order pairs as the true ones do.
/// </summary>
internal sealed class SearchGraph
{
    /// <summary>pynndescent's <c>FLOAT32_EPS</c>: neighbours at most this far away never prune others.</summary>
    private const float Eps = 1.1920929e-07f;

    private const int Block = 256;

    internal SearchGraph(int[] rowPointers, int[] neighbors)
    {
        RowPointers = rowPointers;
        Neighbors = neighbors;
    }

    /// <summary>Start of each row's neighbours in <see cref="Neighbors"/>, length rows + 1.</summary>
    public int[] RowPointers { get; }

    /// <summary>Neighbour indices, each row sorted by index.</summary>
    public int[] Neighbors { get; }

    /// <summary>The largest number of neighbours of a row.</summary>
    public int MaxDegree
    {
        get
        {
            int max = 0;
            for (int i = 0; i + 1 < RowPointers.Length; i++)
                max = Math.Max(max, RowPointers[i + 1] - RowPointers[i]);
            return max;
        }
    }

    /// <summary>pynndescent's degree cap for a graph of <paramref name="k"/> neighbours per row: <c>round(1.5 k)</c>.</summary>
    public static int DegreeCap(int k) => (int)Math.Round(1.5 * k, MidpointRounding.ToEven);

    /// <summary>Prepares the search graph of the training rows' kNN graph.</summary>
    public static SearchGraph Build(PreparedData data, KnnGraph graph, CancellationToken ct = default)
    {
        int n = data.Rows, k = graph.K;
        bool euclidean = data.Metric == DistanceMetric.Euclidean;
        var options = new ParallelOptions { CancellationToken = ct };
        int blocks = (n + Block - 1) / Block;

        // 1. Forward diversification, k slots per row (-1 = empty), increasing distance.
        var fwdIdx = new int[n * k];
        var fwdDist = new float[n * k];
        var fwdCount = new int[n];
        Parallel.For(0, blocks, options, () => (new int[k], new float[k]), (b, _, scratch) =>
        {
            var (idx, dist) = scratch;
            for (int i = b * Block; i < Math.Min(n, (b + 1) * Block); i++)
            {
                int m = 0;
                for (int t = 0; t < k; t++)
                {
                    int j = graph.Indices[i * k + t];
                    if (j < 0 || j == i)
                        continue;
                    float d = graph.Distances[i * k + t];
                    // Insertion by distance (the graph is sorted already; this keeps the rule right if it is not).
                    int p = m++;
                    float r = euclidean ? d * d : d;
                    while (p > 0 && dist[p - 1] > r)
                    {
                        idx[p] = idx[p - 1];
                        dist[p] = dist[p - 1];
                        p--;
                    }
                    idx[p] = j;
                    dist[p] = r;
                }
                var keptIdx = fwdIdx.AsSpan(i * k, k);
                var keptDist = fwdDist.AsSpan(i * k, k);
                int kept = 0;
                for (int t = 0; t < m; t++)
                {
                    int c = idx[t];
                    if (!IsPruned(data, c, dist[t], keptIdx[..kept], keptDist[..kept]))
                    {
                        keptIdx[kept] = c;
                        keptDist[kept++] = dist[t];
                    }
                }
                fwdCount[i] = kept;
            }
            return scratch;
        }, _ => { });

        // 2. The reverse graph: row i lists the rows that kept i.
        var revPtr = new int[n + 1];
        for (int i = 0; i < n; i++)
        {
            for (int t = 0; t < fwdCount[i]; t++)
                revPtr[fwdIdx[i * k + t] + 1]++;
        }
        for (int i = 0; i < n; i++)
            revPtr[i + 1] += revPtr[i];
        var revIdx = new int[revPtr[n]];
        var revDist = new float[revPtr[n]];
        var fill = (int[])revPtr.Clone();
        for (int i = 0; i < n; i++)
        {
            for (int t = 0; t < fwdCount[i]; t++)
            {
                int pos = fill[fwdIdx[i * k + t]]++;
                revIdx[pos] = i;
                revDist[pos] = fwdDist[i * k + t];
            }
        }
        // 3. Union, degree cap, rows sorted by index.
        int cap = DegreeCap(k);
        var count = new int[n];
        var merged = new int[blocks][];
        Parallel.For(0, blocks, options, b =>
        {
            int i0 = b * Block, i1 = Math.Min(n, (b + 1) * Block);
            var idxOut = new List<int>();
            var idx = new int[k + 64];
            var dist = new float[k + 64];
            var sorted = new float[k + 64];
            for (int i = i0; i < i1; i++)
            {
                int reverse = revPtr[i + 1] - revPtr[i];
                int m = fwdCount[i] + reverse;
                if (idx.Length < m)
                {
                    idx = new int[m];
                    dist = new float[m];
                    sorted = new float[m];
                }
                fwdIdx.AsSpan(i * k, fwdCount[i]).CopyTo(idx);
                fwdDist.AsSpan(i * k, fwdCount[i]).CopyTo(dist);
                revIdx.AsSpan(revPtr[i], reverse).CopyTo(idx.AsSpan(fwdCount[i]));
                revDist.AsSpan(revPtr[i], reverse).CopyTo(dist.AsSpan(fwdCount[i]));
                var ri = idx.AsSpan(0, m);
                var rd = dist.AsSpan(0, m);
                ri.Sort(rd);
                // Duplicates (an edge both ways) keep the larger distance, as scipy's maximum() does.
                int u = 0;
                for (int t = 0; t < m; t++)
                {
                    if (u > 0 && ri[u - 1] == ri[t])
                    {
                        rd[u - 1] = Math.Max(rd[u - 1], rd[t]);
                        continue;
                    }
                    ri[u] = ri[t];
                    rd[u++] = rd[t];
                }
                ri = ri[..u];
                rd = rd[..u];
                float cut = float.PositiveInfinity;
                if (u > cap)
                {
                    var byDistance = sorted.AsSpan(0, u);
                    rd.CopyTo(byDistance);
                    byDistance.Sort();
                    cut = byDistance[cap];
                }
                int c = 0;
                for (int t = 0; t < u; t++)
                {
                    if (rd[t] <= cut)
                    {
                        idxOut.Add(ri[t]);
                        c++;
                    }
                }
                count[i] = c;
            }
            merged[b] = idxOut.ToArray();
        });
        var ptr = new int[n + 1];
        for (int i = 0; i < n; i++)
            ptr[i + 1] = ptr[i] + count[i];
        var neighbors = new int[ptr[n]];
        for (int b = 0; b < blocks; b++)
            merged[b].CopyTo(neighbors, ptr[b * Block]);
        return new SearchGraph(ptr, neighbors);
    }

    /// <summary>
    /// Whether candidate <paramref name="c"/> at reduced distance <paramref name="d"/> from the row is pruned: some
    /// kept neighbour at more than <see cref="Eps"/> from the row is nearer to c than the row is.
    /// </summary>
    private static bool IsPruned(PreparedData data, int c, float d, ReadOnlySpan<int> keptIdx, ReadOnlySpan<float> keptDist)
    {
        var row = data.Row(c);
        for (int t = 0; t < keptIdx.Length; t++)
        {
            if (keptDist[t] > Eps && data.Reduced(row, data.Row(keptIdx[t])) < d)
                return true;
        }
        return false;
    }
}
