using Microsoft.ML.ActivationAtlas.Projection.Internal;

namespace Microsoft.ML.ActivationAtlas.Projection.Knn;

/// <summary>
/// Approximate kNN graph by nearest-neighbour descent (Dong et al. 2011) with pynndescent's scheme: random projection
/// forest leaf join for initialisation, sampled new/old candidate lists (reverse neighbours included), local joins
/// that only propose pairs closer than a current neighbour, and an early stop at <c>delta * k * n</c> updates.
/// Deterministic for a given seed, whatever the thread count.
/// </summary>
internal static class NNDescent
{
    private const int JoinBlock = 16384;
    private const int RowsPerChunk = 128;
    private const int LeavesPerChunk = 256;
    private const int MaxTreesPerGroup = 16;
    private const double ForestGroupBytes = 128e6;

    public static KnnGraph Build(PreparedData data, int k, NNDescentSettings settings, CancellationToken ct, IProgress<double>? progress = null)
    {
        int n = data.Rows;
        var idx = new int[n * k];
        var dist = new float[n * k];
        var flags = new byte[n * k];
        NeighborHeap.Init(idx, dist, flags);
        var po = new ParallelOptions { CancellationToken = ct };
        for (int i = 0; i < n; i++)
            NeighborHeap.Push(dist.AsSpan(i * k, k), idx.AsSpan(i * k, k), flags.AsSpan(i * k, k), -1f, i, 0);

        var updates = new GraphUpdates();
        var thresholds = new float[n];

        // 1. Random projection forest: trees built a group at a time (see RandomProjectionForest; a group's working
        //    memory is about 9 bytes per row and tree), each leaf-joined.
        int groups = (int)Math.Max(Math.Ceiling(settings.Trees / (double)MaxTreesPerGroup), Math.Ceiling(settings.Trees * (n * 9.0) / ForestGroupBytes));
        int perGroup = (settings.Trees + groups - 1) / groups;
        for (int t0 = 0; t0 < settings.Trees; t0 += perGroup)
        {
            int t1 = Math.Min(settings.Trees, t0 + perGroup);
            var trees = RandomProjectionForest.Build(data, t0, t1 - t0, settings.LeafSize, settings.Seed, po);
            foreach (var tree in trees)
            {
                ct.ThrowIfCancellationRequested();
                LeafJoin(data, tree, idx, dist, flags, k, updates, thresholds, po);
            }
            progress?.Report(0.3 * t1 / settings.Trees);
        }

        // 2. Fill rows that still lack k neighbours with random rows.
        Parallel.For(0, n, po, i =>
        {
            if (idx[i * k] >= 0)
                return;
            var rng = Rng.ForStream(settings.Seed, 77, i);
            for (int attempt = 0; attempt < 4 * k && idx[i * k] < 0; attempt++)
            {
                int j = rng.NextInt(n);
                NeighborHeap.Push(dist.AsSpan(i * k, k), idx.AsSpan(i * k, k), flags.AsSpan(i * k, k), data.Reduced(i, j), j, 1);
            }
        });

        // 3. NN-descent iterations.
        int mc = settings.MaxCandidates;
        var newCand = new int[n * mc];
        var newPri = new float[n * mc];
        var oldCand = new int[n * mc];
        var oldPri = new float[n * mc];
        for (int iter = 0; iter < settings.Iterations; iter++)
        {
            ct.ThrowIfCancellationRequested();
            BuildCandidates(idx, flags, n, k, mc, newCand, newPri, oldCand, oldPri, settings.Seed, iter, po);
            long changes = 0;
            for (int b0 = 0; b0 < n; b0 += JoinBlock)
            {
                int b1 = Math.Min(n, b0 + JoinBlock);
                for (int i = 0; i < n; i++)
                    thresholds[i] = dist[i * k];
                int chunks = (b1 - b0 + RowsPerChunk - 1) / RowsPerChunk;
                updates.Reset(chunks);
                Parallel.For(0, chunks, po, c =>
                {
                    var list = updates.Get(c);
                    int r0 = b0 + c * RowsPerChunk, r1 = Math.Min(b1, r0 + RowsPerChunk);
                    for (int i = r0; i < r1; i++)
                    {
                        var nc = newCand.AsSpan(i * mc, mc);
                        var oc = oldCand.AsSpan(i * mc, mc);
                        if (i + 1 < r1)
                        {
                            // Start loading the next row's candidates while this row is joined.
                            foreach (int p in newCand.AsSpan((i + 1) * mc, mc))
                            {
                                if (p >= 0)
                                    data.Prefetch(p);
                            }
                            foreach (int p in oldCand.AsSpan((i + 1) * mc, mc))
                            {
                                if (p >= 0)
                                    data.Prefetch(p);
                            }
                        }
                        for (int a = 0; a < mc; a++)
                        {
                            int p = nc[a];
                            if (p < 0)
                                continue;
                            var rowP = data.Row(p);
                            float tp = thresholds[p];
                            for (int b = a + 1; b < mc; b++)
                            {
                                int q = nc[b];
                                if (q < 0 || q == p)
                                    continue;
                                float d = data.Reduced(rowP, data.Row(q));
                                if (d < tp || d < thresholds[q])
                                    list.Add(p, q, d);
                            }
                            for (int b = 0; b < mc; b++)
                            {
                                int q = oc[b];
                                if (q < 0 || q == p)
                                    continue;
                                float d = data.Reduced(rowP, data.Row(q));
                                if (d < tp || d < thresholds[q])
                                    list.Add(p, q, d);
                            }
                        }
                    }
                });
                changes += updates.Apply(idx, dist, flags, k, ct);
            }
            progress?.Report(0.3 + 0.7 * (iter + 1) / settings.Iterations);
            if (changes <= settings.Delta * k * n)
                break;
        }

        // 4. Sort rows and convert to true distances (self first, at 0).
        Parallel.For(0, n, po, i =>
        {
            var hd = dist.AsSpan(i * k, k);
            NeighborHeap.Sort(hd, idx.AsSpan(i * k, k));
            for (int t = 0; t < k; t++)
                hd[t] = hd[t] < 0f ? 0f : data.ToTrue(hd[t]);
        });
        progress?.Report(1.0);
        return new KnnGraph(idx, dist, n, k);
    }

    private static void LeafJoin(PreparedData data, RandomProjectionTree tree, int[] idx, float[] dist, byte[] flags, int k,
        GraphUpdates updates, float[] thresholds, ParallelOptions po)
    {
        int n = data.Rows;
        for (int i = 0; i < n; i++)
            thresholds[i] = dist[i * k];
        int leaves = tree.LeafCount;
        int chunks = (leaves + LeavesPerChunk - 1) / LeavesPerChunk;
        updates.Reset(chunks);
        Parallel.For(0, chunks, po, c =>
        {
            var list = updates.Get(c);
            int l1 = Math.Min(leaves, (c + 1) * LeavesPerChunk);
            for (int l = c * LeavesPerChunk; l < l1; l++)
            {
                var leaf = tree.Leaf(l);
                if (l + 1 < l1)
                {
                    foreach (int r in tree.Leaf(l + 1))
                        data.Prefetch(r);
                }
                for (int a = 0; a < leaf.Length; a++)
                {
                    int p = leaf[a];
                    var rowP = data.Row(p);
                    for (int b = a + 1; b < leaf.Length; b++)
                    {
                        int q = leaf[b];
                        float d = data.Reduced(rowP, data.Row(q));
                        if (d < thresholds[p] || d < thresholds[q])
                            list.Add(p, q, d);
                    }
                }
            }
        });
        updates.Apply(idx, dist, flags, k, po.CancellationToken);
    }

    private static void BuildCandidates(int[] idx, byte[] flags, int n, int k, int mc,
        int[] newCand, float[] newPri, int[] oldCand, float[] oldPri, int seed, int iter, ParallelOptions po)
    {
        Array.Fill(newCand, -1);
        Array.Fill(oldCand, -1);
        Array.Fill(newPri, float.PositiveInfinity);
        Array.Fill(oldPri, float.PositiveInfinity);
        int parts = Math.Max(1, Environment.ProcessorCount);
        Parallel.For(0, parts, po, t =>
        {
            for (int i = 0; i < n; i++)
            {
                for (int j = 0; j < k; j++)
                {
                    int e = i * k + j;
                    int q = idx[e];
                    if (q < 0 || q == i)
                        continue;
                    float pri = (float)((Rng.Hash((ulong)seed, (ulong)iter, (ulong)e) >> 40) * (1.0 / (1UL << 24)));
                    bool isNew = flags[e] != 0;
                    int[] cand = isNew ? newCand : oldCand;
                    float[] pr = isNew ? newPri : oldPri;
                    if (i % parts == t)
                        CandidatePush(pr.AsSpan(i * mc, mc), cand.AsSpan(i * mc, mc), pri, q);
                    if (q % parts == t)
                        CandidatePush(pr.AsSpan(q * mc, mc), cand.AsSpan(q * mc, mc), pri, i);
                }
            }
        });
        // Sampled new candidates become old for the next iteration.
        Parallel.For(0, n, po, i =>
        {
            var nc = newCand.AsSpan(i * mc, mc);
            for (int j = 0; j < k; j++)
            {
                int e = i * k + j;
                if (flags[e] != 0 && nc.Contains(idx[e]))
                    flags[e] = 0;
            }
        });
    }

    private static void CandidatePush(Span<float> pri, Span<int> cand, float p, int q)
    {
        if (!(p < pri[0]) || cand.Contains(q))
            return;
        NeighborHeap.PushUnchecked(pri, cand, p, q);
    }
}
