using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using Microsoft.ML.ActivationAtlas.Projection.Internal;

namespace Microsoft.ML.ActivationAtlas.Projection.Umap;

/// <summary>
/// umap-learn's <c>optimize_layout_euclidean</c>: per-edge sampling schedule (<c>epochs_per_sample</c>), negative
/// sampling, gradient clipping at 4, linear learning-rate decay. Parallel over blocks of edges (Hogwild, as
/// umap-learn), or sequential in a fixed order for bit-identical results.
/// </summary>
/// <remarks>
/// One difference in the order of work: umap-learn moves the point after each of a sample's negative samples, so each
/// repulsion is computed from the position the previous one left. Here all negative samples of one positive sample
/// are computed from the same position (each clipped at 4 as in umap-learn) and their sum is applied once. That removes
/// the dependency between them, so they run side by side (8 lanes in 2-D) instead of as one long chain of
/// pow/divide latencies; the layouts' trustworthiness and neighbour accuracy are unchanged (see the umap benchmark).
/// </remarks>
internal static class UmapOptimizer
{
    private const int EdgeBlock = 8192;

    /// <summary>umap-learn's <c>make_epochs_per_sample</c>.</summary>
    public static float[] EpochsPerSample(float[] weights, int epochs) =>
        EpochsPerSample(weights, epochs, weights.Length == 0 ? 0f : System.Numerics.Tensors.TensorPrimitives.Max<float>(weights));

    /// <summary><c>make_epochs_per_sample</c> relative to a given maximum weight.</summary>
    public static float[] EpochsPerSample(float[] weights, int epochs, float max)
    {
        var result = new float[weights.Length];
        for (int e = 0; e < weights.Length; e++)
        {
            double samples = epochs * (weights[e] / (double)max);
            result[e] = samples > 0 ? (float)(epochs / samples) : -1f;
        }
        return result;
    }

    public static void Optimize(
        float[] head, float[] tail, int[] heads, int[] tails, int tailCount, float[] epochsPerSample,
        int dim, float a, float b, float gamma, float initialAlpha, float negativeRate, int epochs,
        bool moveOther, bool deterministic, int seed, CancellationToken ct, IProgress<double>? progress)
    {
        int edges = heads.Length;
        // The 2-D kernel reads the layouts without bounds checks: make sure every index is in range first.
        if (tails.Length < edges || epochsPerSample.Length < edges || (long)tailCount * dim > tail.Length)
            throw new ArgumentException("The edge arrays and the layouts do not match.", nameof(tails));
        var (epochOfNextSample, epochsPerNegative, epochOfNextNegative) = Schedule(heads, head.Length / dim, tails, tailCount, epochsPerSample, negativeRate);
        int blocks = (edges + EdgeBlock - 1) / EdgeBlock;
        var po = new ParallelOptions { CancellationToken = ct };
        float alpha = initialAlpha;
        for (int epoch = 0; epoch < epochs; epoch++)
        {
            ct.ThrowIfCancellationRequested();
            float currentAlpha = alpha;
            int n = epoch;
            void RunBlock(int block)
            {
                var rng = Rng.ForStream(seed, n, block);
                int e0 = block * EdgeBlock, e1 = Math.Min(edges, e0 + EdgeBlock);
                // The 2-D kernel is written for 8-lane vectors; without them the general kernel does the same updates.
                if (dim == 2 && Vector256.IsHardwareAccelerated)
                    RunEdges2D(head, tail, heads, tails, tailCount, epochsPerSample, epochOfNextSample, epochsPerNegative, epochOfNextNegative, a, b, gamma, currentAlpha, moveOther, n, e0, e1, ref rng);
                else
                    RunEdges(head, tail, heads, tails, tailCount, epochsPerSample, epochOfNextSample, epochsPerNegative, epochOfNextNegative, dim, a, b, gamma, currentAlpha, moveOther, n, e0, e1, ref rng);
            }
            if (deterministic)
            {
                for (int block = 0; block < blocks; block++)
                    RunBlock(block);
            }
            else
            {
                Parallel.For(0, blocks, po, RunBlock);
            }
            alpha = initialAlpha * (1f - (float)epoch / epochs);
            if (progress is not null && ((epoch + 1) % 10 == 0 || epoch + 1 == epochs))
                progress.Report((double)(epoch + 1) / epochs);
        }
    }

    /// <summary>
    /// The SGD of a transform: rows of <paramref name="head"/> move towards their (frozen) <paramref name="tail"/>
    /// neighbours and away from random frozen rows, as <see cref="Optimize"/> does with <c>moveOther</c> off; since
    /// the rows do not interact, each row is optimised on its own with a random stream keyed by its index
    /// (<paramref name="firstRowIndex"/> + its row), so a row lands in the same place whatever other rows are
    /// transformed with it and whatever the thread count. <paramref name="rowPointers"/> delimits each row's edges.
    /// </summary>
    public static void OptimizeIndependentRows(
        float[] head, float[] tail, int[] rowPointers, int[] tails, int tailCount, float[] epochsPerSample,
        int dim, float a, float b, float gamma, float initialAlpha, float negativeRate, int epochs,
        int seed, long firstRowIndex, CancellationToken ct, IProgress<double>? progress)
    {
        int rows = rowPointers.Length - 1, edges = rowPointers[rows];
        if (tails.Length < edges || epochsPerSample.Length < edges || (long)tailCount * dim > tail.Length || (long)rows * dim > head.Length)
            throw new ArgumentException("The edge arrays and the layouts do not match.", nameof(tails));
        var heads = new int[edges];
        for (int i = 0; i < rows; i++)
        {
            if (rowPointers[i] > rowPointers[i + 1])
                throw new ArgumentException("The row pointers must not decrease.", nameof(rowPointers));
            heads.AsSpan(rowPointers[i], rowPointers[i + 1] - rowPointers[i]).Fill(i);
        }
        var (epochOfNextSample, epochsPerNegative, epochOfNextNegative) = Schedule(heads, rows, tails, tailCount, epochsPerSample, negativeRate);
        var alphas = new float[epochs];
        for (int epoch = 0; epoch < epochs; epoch++)
            alphas[epoch] = epoch == 0 ? initialAlpha : initialAlpha * (1f - (float)(epoch - 1) / epochs);
        const int RowBlock = 256;
        int blocks = (rows + RowBlock - 1) / RowBlock, done = 0;
        Parallel.For(0, blocks, new ParallelOptions { CancellationToken = ct }, block =>
        {
            int r1 = Math.Min(rows, (block + 1) * RowBlock);
            for (int r = block * RowBlock; r < r1; r++)
            {
                var rng = Rng.ForStream(seed, firstRowIndex + r, -1);
                int e0 = rowPointers[r], e1 = rowPointers[r + 1];
                for (int n = 0; n < epochs; n++)
                {
                    if (dim == 2 && Vector256.IsHardwareAccelerated)
                        RunEdges2D(head, tail, heads, tails, tailCount, epochsPerSample, epochOfNextSample, epochsPerNegative, epochOfNextNegative, a, b, gamma, alphas[n], false, n, e0, e1, ref rng);
                    else
                        RunEdges(head, tail, heads, tails, tailCount, epochsPerSample, epochOfNextSample, epochsPerNegative, epochOfNextNegative, dim, a, b, gamma, alphas[n], false, n, e0, e1, ref rng);
                }
            }
            if (progress is not null)
                progress.Report((double)Interlocked.Increment(ref done) / blocks);
        });
    }

    /// <summary>
    /// Checks that every edge's rows are inside the layouts (the kernels read them without bounds checks) and returns
    /// umap-learn's sampling schedule: when each edge is next sampled, and its negative-sampling period and next epoch.
    /// </summary>
    private static (float[] EpochOfNextSample, float[] EpochsPerNegative, float[] EpochOfNextNegative) Schedule(
        int[] heads, int headRows, int[] tails, int tailCount, float[] epochsPerSample, float negativeRate)
    {
        int edges = heads.Length;
        for (int e = 0; e < edges; e++)
        {
            if ((uint)heads[e] >= (uint)headRows || (uint)tails[e] >= (uint)tailCount)
                throw new ArgumentOutOfRangeException(nameof(heads), $"Edge {e} refers to a row outside the layout.");
        }
        var epochOfNextSample = (float[])epochsPerSample.Clone();
        var epochsPerNegative = new float[edges];
        for (int e = 0; e < edges; e++)
            epochsPerNegative[e] = negativeRate > 0 ? epochsPerSample[e] / negativeRate : float.PositiveInfinity;
        return (epochOfNextSample, epochsPerNegative, (float[])epochsPerNegative.Clone());
    }

    private static void RunEdges(float[] head, float[] tail, int[] heads, int[] tails, int tailCount, float[] epochsPerSample,
        float[] epochOfNextSample, float[] epochsPerNegative, float[] epochOfNextNegative, int dim, float a, float b, float gamma,
        float alpha, bool moveOther, int n, int e0, int e1, ref Rng rng)
    {
        Span<float> push = dim <= 64 ? stackalloc float[dim] : new float[dim];
        for (int e = e0; e < e1; e++)
        {
            if (!(epochOfNextSample[e] <= n))
                continue;
            int j = heads[e], k = tails[e];
            var current = head.AsSpan(j * dim, dim);
            var other = tail.AsSpan(k * dim, dim);
            float d2 = SquaredDistance(current, other);
            float coeff = 0f;
            if (d2 > 0f)
            {
                float pb = FastPow.Pow(d2, b);
                coeff = -2f * a * b * (pb / d2) / (a * pb + 1f);
            }
            for (int d = 0; d < dim; d++)
            {
                float g = Clip(coeff * (current[d] - other[d]));
                current[d] += g * alpha;
                if (moveOther)
                    other[d] -= g * alpha;
            }
            epochOfNextSample[e] += epochsPerSample[e];
            int negatives = (int)((n - epochOfNextNegative[e]) / epochsPerNegative[e]);
            push.Clear();
            for (int p = 0; p < negatives; p++)
            {
                int kk = rng.NextInt(tailCount);
                var neg = tail.AsSpan(kk * dim, dim);
                float nd2 = SquaredDistance(current, neg);
                if (nd2 > 0f)
                {
                    float ncoeff = 2f * gamma * b / ((0.001f + nd2) * (a * FastPow.Pow(nd2, b) + 1f));
                    for (int d = 0; d < dim; d++)
                        push[d] += Clip(ncoeff * (current[d] - neg[d]));
                }
                else if (!(j == kk && moveOther))
                {
                    for (int d = 0; d < dim; d++)
                        push[d] += 4f;
                }
            }
            for (int d = 0; d < dim; d++)
                current[d] += push[d] * alpha;
            epochOfNextNegative[e] += negatives * epochsPerNegative[e];
        }
    }

    /// <summary>
    /// The same update for 2-D layouts, with the coordinates in registers and the arrays read through references
    /// (indices come from the graph, validated when it was built, so the per-access bounds checks are dropped).
    /// </summary>
    private static void RunEdges2D(float[] head, float[] tail, int[] heads, int[] tails, int tailCount, float[] epochsPerSample,
        float[] epochOfNextSample, float[] epochsPerNegative, float[] epochOfNextNegative, float a, float b, float gamma,
        float alpha, bool moveOther, int n, int e0, int e1, ref Rng rng)
    {
        if ((uint)e1 > (uint)heads.Length || (uint)e1 > (uint)tails.Length || (uint)e1 > (uint)epochsPerSample.Length
            || (uint)e1 > (uint)epochOfNextSample.Length || (uint)e1 > (uint)epochsPerNegative.Length
            || (uint)e1 > (uint)epochOfNextNegative.Length || 2L * tailCount > tail.Length)
            throw new ArgumentOutOfRangeException(nameof(e1));
        float ab2 = -2f * a * b, gb2 = 2f * gamma * b;
        ref float h = ref MemoryMarshal.GetArrayDataReference(head);
        ref float t = ref MemoryMarshal.GetArrayDataReference(tail);
        ref int hs = ref MemoryMarshal.GetArrayDataReference(heads);
        ref int ts = ref MemoryMarshal.GetArrayDataReference(tails);
        ref float eps = ref MemoryMarshal.GetArrayDataReference(epochsPerSample);
        ref float next = ref MemoryMarshal.GetArrayDataReference(epochOfNextSample);
        ref float epn = ref MemoryMarshal.GetArrayDataReference(epochsPerNegative);
        ref float nextNeg = ref MemoryMarshal.GetArrayDataReference(epochOfNextNegative);
        // The edges due this epoch, found eight at a time without a branch per edge.
        Span<int> due = stackalloc int[e1 - e0 + 8];
        int dueCount = 0;
        var epoch = Vector256.Create((float)n);
        int scan = e0;
        ref Vector256<int> lanes = ref MemoryMarshal.GetArrayDataReference(DueLanes);
        for (; scan + 8 <= e1; scan += 8)
        {
            uint mask = Vector256.LessThanOrEqual(Vector256.LoadUnsafe(ref next, (nuint)scan), epoch).ExtractMostSignificantBits();
            (Vector256.Create(scan) + Unsafe.Add(ref lanes, (int)mask)).StoreUnsafe(ref MemoryMarshal.GetReference(due), (nuint)dueCount);
            dueCount += System.Numerics.BitOperations.PopCount(mask);
        }
        for (; scan < e1; scan++)
        {
            if (Unsafe.Add(ref next, scan) <= n)
                due[dueCount++] = scan;
        }
        for (int d = 0; d < dueCount; d++)
        {
            int e = due[d];
            ref float nextE = ref Unsafe.Add(ref next, e);
            int j = Unsafe.Add(ref hs, e), k = Unsafe.Add(ref ts, e);
            ref float cur = ref Unsafe.Add(ref h, 2 * (nint)j);
            ref float oth = ref Unsafe.Add(ref t, 2 * (nint)k);
            float cx = cur, cy = Unsafe.Add(ref cur, 1);
            float ox = oth, oy = Unsafe.Add(ref oth, 1);
            float dx = cx - ox, dy = cy - oy;
            float d2 = dx * dx + dy * dy;
            if (d2 > 0f)
            {
                float pb = FastPow.Pow(d2, b);
                float coeff = ab2 * (pb / d2) / (a * pb + 1f);
                float gx = Clip(coeff * dx) * alpha, gy = Clip(coeff * dy) * alpha;
                cx += gx;
                cy += gy;
                if (moveOther)
                {
                    oth = ox - gx;
                    Unsafe.Add(ref oth, 1) = oy - gy;
                }
            }
            cur = cx;
            Unsafe.Add(ref cur, 1) = cy;
            nextE += Unsafe.Add(ref eps, e);
            ref float nextNegE = ref Unsafe.Add(ref nextNeg, e);
            float epnE = Unsafe.Add(ref epn, e);
            int negatives = (int)((n - nextNegE) / epnE);
            if (negatives > 0)
            {
                var (px, py) = Repulsion2D(ref t, cx, cy, negatives, j, tailCount, moveOther, a, b, gb2, ref rng);
                cur = cx + px * alpha;
                Unsafe.Add(ref cur, 1) = cy + py * alpha;
            }
            nextNegE += negatives * epnE;
        }
    }

    /// <summary>
    /// The summed, clipped repulsion of <paramref name="count"/> random tail points on the point (cx, cy), all computed
    /// from that one position, eight at a time. A zero distance pushes by 4 on both axes (umap-learn), except the point
    /// itself.
    /// </summary>
    private static (float X, float Y) Repulsion2D(ref float tail, float cx, float cy, int count, int self, int tailCount,
        bool moveOther, float a, float b, float gb2, ref Rng rng)
    {
        Span<float> xs = stackalloc float[8];
        Span<float> ys = stackalloc float[8];
        Span<int> picked = stackalloc int[8];
        var vb = Vector256.Create(b);
        var va = Vector256.Create(a);
        var vgb2 = Vector256.Create(gb2);
        var limit = Vector256.Create(4f);
        float sx = 0f, sy = 0f;
        for (int p = 0; p < count; p += 8)
        {
            int m = Math.Min(8, count - p);
            for (int q = 0; q < m; q++)
            {
                int kk = rng.NextInt(tailCount);
                picked[q] = kk;
                ref float neg = ref Unsafe.Add(ref tail, 2 * (nint)kk);
                xs[q] = cx - neg;
                ys[q] = cy - Unsafe.Add(ref neg, 1);
            }
            // Unused lanes hold zero offsets: their clipped gradient, coefficient x 0, is 0.
            xs[m..].Clear();
            ys[m..].Clear();
            var vx = Vector256.Create<float>(xs);
            var vy = Vector256.Create<float>(ys);
            var nd2 = vx * vx + vy * vy;
            var coeff = vgb2 / ((Vector256.Create(0.001f) + nd2) * (va * FastPow.Pow(nd2, vb) + Vector256<float>.One));
            sx += Vector256.Sum(Vector256.Min(Vector256.Max(coeff * vx, -limit), limit));
            sy += Vector256.Sum(Vector256.Min(Vector256.Max(coeff * vy, -limit), limit));
            if (Vector256.EqualsAny(nd2, Vector256<float>.Zero))
            {
                for (int q = 0; q < m; q++)
                {
                    if (xs[q] == 0f && ys[q] == 0f && !(self == picked[q] && moveOther))
                    {
                        sx += 4f;
                        sy += 4f;
                    }
                }
            }
        }
        return (sx, sy);
    }

    /// <summary>For each 8-bit mask, the positions of its set bits, first to last (the rest of the lanes unused).</summary>
    private static readonly Vector256<int>[] DueLanes = Enumerable.Range(0, 256).Select(mask =>
    {
        var lanes = new int[8];
        for (int bit = 0, k = 0; bit < 8; bit++)
        {
            if ((mask & (1 << bit)) != 0)
                lanes[k++] = bit;
        }
        return Vector256.Create(lanes);
    }).ToArray();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Clip(float v) => v > 4f ? 4f : v < -4f ? -4f : v;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float SquaredDistance(Span<float> x, Span<float> y)
    {
        float s = 0f;
        for (int d = 0; d < x.Length; d++)
        {
            float t = x[d] - y[d];
            s += t * t;
        }
        return s;
    }
}
