using Microsoft.ML.ActivationAtlas.Projection.Internal;

namespace Microsoft.ML.ActivationAtlas.Projection.Knn;

/// <summary>
/// A random projection tree (pynndescent's scheme): each node splits its rows by the hyperplane half-way between two
/// random rows (euclidean) or through the origin between them (angular, for cosine on normalised rows), down to
/// leaves of at most <c>leafSize</c> rows. A tree built by <see cref="Build"/> keeps its hyperplanes and finds starting
/// candidates for new query rows; NN-descent's trees come from <see cref="RandomProjectionForest"/> and keep only their
/// leaves.
/// </summary>
internal sealed class RandomProjectionTree
{
    /// <summary>Margins within this of zero go to a random side.</summary>
    internal const float Eps = 1e-8f;

    private readonly int _dims;
    private readonly bool _angular;
    private readonly List<float> _normals = new();
    private readonly List<float> _offsets = new();
    private readonly List<int> _children = new(); // 2 per internal node; a child < 0 is leaf ~child
    private readonly List<int> _leafStart = new();
    private readonly List<int> _leafEnd = new();

    private RandomProjectionTree(int[] indices, int dims, bool angular)
    {
        Indices = indices;
        _dims = dims;
        _angular = angular;
    }

    /// <summary>A permutation of the row indices in which every leaf is a contiguous range.</summary>
    public int[] Indices { get; }

    /// <summary>Number of leaves.</summary>
    public int LeafCount => _leafStart.Count;

    /// <summary>The rows of leaf <paramref name="leaf"/>.</summary>
    public ReadOnlySpan<int> Leaf(int leaf) => Indices.AsSpan(_leafStart[leaf], _leafEnd[leaf] - _leafStart[leaf]);

    /// <summary>Builds one tree over all rows, keeping its hyperplanes (for <see cref="LeafOf"/>).</summary>
    public static RandomProjectionTree Build(PreparedData data, int leafSize, Rng rng)
    {
        int n = data.Rows, dims = data.Dims;
        var indices = new int[n];
        for (int i = 0; i < n; i++)
            indices[i] = i;
        var tree = new RandomProjectionTree(indices, dims, data.Metric == DistanceMetric.Cosine);
        var normal = new float[dims];
        var stack = new Stack<(int Start, int End, int Parent, int Side)>();
        stack.Push((0, n, -1, 0));
        while (stack.Count > 0)
        {
            var (start, end, parent, side) = stack.Pop();
            int count = end - start;
            int childId;
            if (count <= leafSize)
            {
                childId = ~tree._leafStart.Count;
                tree._leafStart.Add(start);
                tree._leafEnd.Add(end);
            }
            else
            {
                float offset = tree.MakeHyperplane(data, indices.AsSpan(start, count), ref rng, normal);
                int mid = Partition(data, indices, start, end, normal, offset, ref rng);
                childId = tree._offsets.Count;
                tree._offsets.Add(offset);
                tree._normals.AddRange(normal);
                tree._children.Add(0);
                tree._children.Add(0);
                stack.Push((mid, end, childId, 1));
                stack.Push((start, mid, childId, 0));
            }
            if (parent >= 0)
                tree._children[2 * parent + side] = childId;
        }
        return tree;
    }

    /// <summary>The leaf a (prepared) query row falls into; needs a tree built by <see cref="Build"/>.</summary>
    public ReadOnlySpan<int> LeafOf(ReadOnlySpan<float> query, ulong salt)
    {
        if (_offsets.Count == 0)
            return Leaf(0);
        int node = 0;
        int step = 0;
        while (true)
        {
            float margin = _offsets[node] + Distances.Dot(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(_normals).Slice(node * _dims, _dims), query);
            int side = margin > Eps ? 0 : margin < -Eps ? 1 : (int)(Rng.Hash(salt, (ulong)step, 7) & 1);
            int child = _children[2 * node + side];
            if (child < 0)
                return Leaf(~child);
            node = child;
            step++;
        }
    }

    /// <summary>A tree of leaves already computed (by <see cref="RandomProjectionForest"/>); it keeps no hyperplanes.</summary>
    internal static RandomProjectionTree FromLeaves(int[] indices, int dims, bool angular, IEnumerable<(int Start, int End)> leaves)
    {
        var tree = new RandomProjectionTree(indices, dims, angular);
        foreach (var (start, end) in leaves)
        {
            tree._leafStart.Add(start);
            tree._leafEnd.Add(end);
        }
        return tree;
    }

    private float MakeHyperplane(PreparedData data, ReadOnlySpan<int> rows, ref Rng rng, float[] normal) =>
        MakeHyperplane(data, rows, ref rng, normal, _angular);

    /// <summary>
    /// The splitting hyperplane of a node: the normal is the difference of two random rows of it (unit length for
    /// angular trees, which pass through the origin); returns the offset, so that a row's margin is
    /// <c>offset + normal . row</c>.
    /// </summary>
    internal static float MakeHyperplane(PreparedData data, ReadOnlySpan<int> rows, ref Rng rng, Span<float> normal, bool angular)
    {
        int a = rng.NextInt(rows.Length);
        int b = rng.NextInt(rows.Length);
        if (a == b)
            b = (b + 1) % rows.Length;
        var left = data.Row(rows[a]);
        var right = data.Row(rows[b]);
        System.Numerics.Tensors.TensorPrimitives.Subtract(left, right, normal);
        if (angular)
        {
            float norm = System.Numerics.Tensors.TensorPrimitives.Norm<float>(normal);
            if (norm > 0f)
                System.Numerics.Tensors.TensorPrimitives.Multiply(normal, 1f / norm, normal);
            return 0f;
        }
        // offset = -normal . (left + right) / 2
        return -0.5f * (Distances.Dot(normal, left) + Distances.Dot(normal, right));
    }

    /// <summary>Splits rows <paramref name="start"/>..<paramref name="end"/> of <paramref name="indices"/> by a hyperplane; returns the first row of the right side.</summary>
    internal static int Partition(PreparedData data, int[] indices, int start, int end, ReadOnlySpan<float> normal, float offset, ref Rng rng)
    {
        int i = start, j = end - 1;
        const int ahead = 4;
        for (int t = start; t < Math.Min(end, start + ahead); t++)
            data.Prefetch(indices[t]);
        for (int t = Math.Max(start, end - ahead); t < end; t++)
            data.Prefetch(indices[t]);
        while (i <= j)
        {
            // Rows are visited in index order, which is random in memory: load a few ahead on both ends.
            if (i + ahead <= j)
                data.Prefetch(indices[i + ahead]);
            if (j - ahead >= i)
                data.Prefetch(indices[j - ahead]);
            float m = offset + Distances.Dot(normal, data.Row(indices[i]));
            bool left = m > Eps || (m >= -Eps && (rng.NextULong() & 1) == 0);
            if (left)
            {
                i++;
            }
            else
            {
                (indices[i], indices[j]) = (indices[j], indices[i]);
                j--;
            }
        }
        int mid = i;
        if (mid == start || mid == end)
        {
            // Every row on one side (e.g. duplicates): split at random in halves, as pynndescent does.
            for (int t = end - 1; t > start; t--)
            {
                int s = start + rng.NextInt(t - start + 1);
                (indices[t], indices[s]) = (indices[s], indices[t]);
            }
            mid = start + (end - start) / 2;
        }
        return mid;
    }
}
