using Microsoft.ML.ActivationAtlas.Projection.Internal;

namespace Microsoft.ML.ActivationAtlas.Projection.Knn;

/// <summary>
/// Builds a group of random projection trees together, for NN-descent's initialisation. Each tree is the same kind of
/// tree as <see cref="RandomProjectionTree.Build"/> makes (without keeping the hyperplanes); what differs is the order
/// of work. Built one at a time, a
/// tree reads every row once per level, in random order, so a forest of T trees of depth L streams T x L copies of
/// the data from memory. Here the top levels of all trees are built breadth-first: one pass over the rows, in memory
/// order, computes every tree's split of every row, while the hyperplanes of the level stay in cache. Once a level's
/// hyperplanes would no longer fit, each remaining node is finished depth-first; by then its rows are few enough to
/// stay in cache as it is split further.
/// </summary>
internal static class RandomProjectionForest
{
    private const long PlaneBudgetBytes = 8L << 20;
    private const int RowBlock = 256;

    /// <summary>Builds trees <paramref name="first"/> .. <paramref name="first"/> + <paramref name="count"/> - 1 of a seeded forest.</summary>
    public static RandomProjectionTree[] Build(PreparedData data, int first, int count, int leafSize, int seed, ParallelOptions po)
    {
        int n = data.Rows, dims = data.Dims;
        bool angular = data.Metric == DistanceMetric.Cosine;
        var indices = new int[count][];
        var nodeOf = new int[count][];
        var side = new byte[count][];
        var open = new List<(int Start, int End)>[count];
        var leaves = new List<(int Start, int End)>[count];
        for (int t = 0; t < count; t++)
        {
            indices[t] = new int[n];
            for (int i = 0; i < n; i++)
                indices[t][i] = i;
            nodeOf[t] = new int[n];
            side[t] = new byte[n];
            leaves[t] = new List<(int, int)>();
            open[t] = n > leafSize ? [(0, n)] : [];
            if (n <= leafSize)
                leaves[t].Add((0, n));
        }

        for (int level = 0; ; level++)
        {
            po.CancellationToken.ThrowIfCancellationRequested();
            var planeBase = new int[count + 1];
            for (int t = 0; t < count; t++)
                planeBase[t + 1] = planeBase[t] + open[t].Count;
            int planes = planeBase[count];
            if (planes == 0 || (long)planes * dims * sizeof(float) > PlaneBudgetBytes)
                break;

            // The level's hyperplanes, one per open node.
            var normals = new float[planes * dims];
            var offsets = new float[planes];
            Parallel.For(0, planes, po, p =>
            {
                int t = 0;
                while (planeBase[t + 1] <= p)
                    t++;
                int v = p - planeBase[t];
                var (start, end) = open[t][v];
                var rng = NodeRng(seed, first + t, level, start);
                offsets[p] = RandomProjectionTree.MakeHyperplane(data, indices[t].AsSpan(start, end - start), ref rng, normals.AsSpan(p * dims, dims), angular);
            });

            // One pass over the rows in memory order: every tree's side for every row still in an open node.
            int blocks = (n + RowBlock - 1) / RowBlock;
            Parallel.For(0, blocks, po, blk =>
            {
                int r1 = Math.Min(n, (blk + 1) * RowBlock);
                for (int r = blk * RowBlock; r < r1; r++)
                {
                    var row = data.Row(r);
                    for (int t = 0; t < count; t++)
                    {
                        int v = nodeOf[t][r];
                        if (v < 0)
                            continue;
                        int p = planeBase[t] + v;
                        float m = offsets[p] + Distances.Dot(normals.AsSpan(p * dims, dims), row);
                        side[t][r] = m > RandomProjectionTree.Eps ? (byte)0
                            : m < -RandomProjectionTree.Eps ? (byte)1
                            : (byte)(Rng.Hash((ulong)seed, (ulong)(first + t), ((ulong)level << 32) | (uint)r) & 1);
                    }
                }
            });

            // Stable partitions keep every node's rows in increasing order, so later passes still read memory in order.
            Parallel.For(0, count, po, () => new int[n], (t, _, buffer) =>
            {
                var next = new List<(int, int)>();
                var idx = indices[t];
                for (int v = 0; v < open[t].Count; v++)
                {
                    var (start, end) = open[t][v];
                    int mid = StablePartition(idx, start, end, side[t], buffer);
                    if (mid == start || mid == end)
                    {
                        // Every row on one side (e.g. duplicates): split at random in halves, as pynndescent does.
                        var rng = NodeRng(seed, first + t, level, ~start);
                        for (int i = end - 1; i > start; i--)
                        {
                            int j = start + rng.NextInt(i - start + 1);
                            (idx[i], idx[j]) = (idx[j], idx[i]);
                        }
                        mid = start + (end - start) / 2;
                        idx.AsSpan(start, mid - start).Sort();
                        idx.AsSpan(mid, end - mid).Sort();
                    }
                    foreach (var child in new[] { (start, mid), (mid, end) })
                    {
                        if (child.Item2 - child.Item1 <= leafSize)
                        {
                            leaves[t].Add(child);
                            foreach (int r in idx.AsSpan(child.Item1, child.Item2 - child.Item1))
                                nodeOf[t][r] = -1;
                        }
                        else
                        {
                            foreach (int r in idx.AsSpan(child.Item1, child.Item2 - child.Item1))
                                nodeOf[t][r] = next.Count;
                            next.Add(child);
                        }
                    }
                }
                open[t] = next;
                return buffer;
            }, _ => { });
        }

        // The remaining nodes, depth-first, one task per node.
        var tasks = new List<(int Tree, int Start, int End)>();
        for (int t = 0; t < count; t++)
            foreach (var (start, end) in open[t])
                tasks.Add((t, start, end));
        var taskLeaves = new List<(int, int)>[tasks.Count];
        Parallel.For(0, tasks.Count, po, () => new float[dims], (i, _, normal) =>
        {
            var (t, start, end) = tasks[i];
            taskLeaves[i] = SplitDepthFirst(data, indices[t], start, end, leafSize, NodeRng(seed, first + t, -1, start), normal, angular);
            return normal;
        }, _ => { });
        for (int i = 0; i < tasks.Count; i++)
            leaves[tasks[i].Tree].AddRange(taskLeaves[i]);

        var trees = new RandomProjectionTree[count];
        for (int t = 0; t < count; t++)
            trees[t] = RandomProjectionTree.FromLeaves(indices[t], dims, angular, leaves[t]);
        return trees;
    }

    private static Rng NodeRng(int seed, int tree, int level, int start) =>
        new(Rng.Hash((ulong)seed ^ 0x5EEDUL, (ulong)tree, ((ulong)(uint)level << 32) | (uint)start));

    /// <summary>Moves the rows with side 0 before those with side 1, each group in its original order; returns the split.</summary>
    private static int StablePartition(int[] idx, int start, int end, byte[] side, int[] buffer)
    {
        int left = start, right = 0;
        for (int i = start; i < end; i++)
        {
            int r = idx[i];
            if (side[r] == 0)
                idx[left++] = r;
            else
                buffer[right++] = r;
        }
        buffer.AsSpan(0, right).CopyTo(idx.AsSpan(left));
        return left;
    }

    private static List<(int, int)> SplitDepthFirst(PreparedData data, int[] idx, int start, int end, int leafSize, Rng rng, float[] normal, bool angular)
    {
        var leaves = new List<(int, int)>();
        var stack = new Stack<(int, int)>();
        stack.Push((start, end));
        while (stack.Count > 0)
        {
            var (s, e) = stack.Pop();
            if (e - s <= leafSize)
            {
                leaves.Add((s, e));
                continue;
            }
            float offset = RandomProjectionTree.MakeHyperplane(data, idx.AsSpan(s, e - s), ref rng, normal, angular);
            int mid = RandomProjectionTree.Partition(data, idx, s, e, normal, offset, ref rng);
            stack.Push((mid, e));
            stack.Push((s, mid));
        }
        return leaves;
    }
}
