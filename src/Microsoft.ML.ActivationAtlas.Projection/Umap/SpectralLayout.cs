using Microsoft.ML.ActivationAtlas.Projection.Internal;
using Microsoft.ML.ActivationAtlas.Projection.Sparse;

namespace Microsoft.ML.ActivationAtlas.Projection.Umap;

/// <summary>
/// umap-learn's spectral initialisation: the eigenvectors of the normalised Laplacian <c>I - D^-1/2 W D^-1/2</c>
/// with the smallest non-trivial eigenvalues (found here as the largest of <c>D^-1/2 W D^-1/2</c> after deflating the
/// known top eigenvector <c>sqrt(degree)</c>, by restarted Lanczos with full reorthogonalisation). Disconnected
/// components are laid out separately around a meta-layout of the components (<see cref="ComponentLayout"/>), as
/// <c>multi_component_layout</c> does: each by its own spectral layout scaled to half the distance from its meta
/// position to the nearest other one; a component too small for the eigen-solve (fewer than <c>2 dim</c> or at most
/// <c>dim + 1</c> rows) or whose eigen-solve fails gets uniform random positions in that range around its meta position.
/// </summary>
internal static class SpectralLayout
{
    public static float[] Compute(CsrGraph graph, PreparedData data, int dim, int seed, CancellationToken ct)
    {
        int n = graph.Rows;
        var (count, labels) = ConnectedComponents(graph);
        var result = new float[n * dim];
        var rng = Rng.ForStream(seed, 5);
        if (count == 1)
        {
            var all = Enumerable.Range(0, n).ToArray();
            if (!TryEigenLayout(graph, all, dim, seed, result, 1.0, new double[dim], NewLocalMap(n), ct))
                RandomLayout(all, dim, 10.0, new double[dim], result, ref rng);
            return result;
        }

        // Meta layout of the components (umap-learn's component_layout), each component scaled to half the distance
        // from its meta position to the nearest other one.
        var meta = ComponentLayout.Compute(data, labels, count, dim, seed, ct);
        var local = NewLocalMap(n);
        var members = new List<int>[count];
        for (int c = 0; c < count; c++)
            members[c] = new List<int>();
        for (int i = 0; i < n; i++)
            members[labels[i]].Add(i);
        for (int c = 0; c < count; c++)
        {
            ct.ThrowIfCancellationRequested();
            double minDist = double.PositiveInfinity;
            for (int o = 0; o < count; o++)
            {
                if (o == c)
                    continue;
                double s = 0;
                for (int d = 0; d < dim; d++)
                    s += (meta[c * dim + d] - meta[o * dim + d]) * (meta[c * dim + d] - meta[o * dim + d]);
                if (s > 0)
                    minDist = Math.Min(minDist, Math.Sqrt(s));
            }
            double range = double.IsFinite(minDist) ? minDist / 2 : 1.0;
            var rows = members[c].ToArray();
            var center = meta.AsSpan(c * dim, dim).ToArray();
            if (rows.Length < 2 * dim || rows.Length <= dim + 1 || !TryEigenLayout(graph, rows, dim, seed + c, result, range, center, local, ct))
                RandomLayout(rows, dim, range, center, result, ref rng);
        }
        return result;
    }

    private static void RandomLayout(int[] rows, int dim, double range, double[] center, float[] result, ref Rng rng)
    {
        foreach (int r in rows)
        {
            for (int d = 0; d < dim; d++)
                result[r * dim + d] = (float)(center[d] + (rng.NextDouble() * 2 - 1) * range);
        }
    }

    /// <summary>
    /// Spectral layout of the sub-graph on <paramref name="rows"/>, scaled to max |x| = range, shifted to center.
    /// <paramref name="local"/> (one entry per graph row, all -1) maps rows to sub-graph numbers while it runs and is
    /// left all -1 again, so that one buffer serves every component.
    /// </summary>
    private static bool TryEigenLayout(CsrGraph graph, int[] rows, int dim, int seed, float[] result, double range, double[] center, int[] local, CancellationToken ct)
    {
        int m = rows.Length;
        if (m <= dim + 1)
            return false;
        for (int i = 0; i < m; i++)
            local[rows[i]] = i;
        try
        {
            return TryEigenLayout(graph, rows, local, dim, seed, result, range, center, ct);
        }
        finally
        {
            foreach (int r in rows)
                local[r] = -1;
        }
    }

    private static bool TryEigenLayout(CsrGraph graph, int[] rows, int[] local, int dim, int seed, float[] result, double range, double[] center, CancellationToken ct)
    {
        int m = rows.Length;
        var degree = new double[m];
        for (int i = 0; i < m; i++)
        {
            int r = rows[i];
            for (int e = graph.RowPointers[r]; e < graph.RowPointers[r + 1]; e++)
            {
                if (local[graph.ColumnIndices[e]] >= 0)
                    degree[i] += graph.Values[e];
            }
        }
        if (!TryDegreeScaling(degree, out var invSqrt, out var trivial))
            return false;

        // The sub-graph in local numbering with D^-1/2 folded into the column values, so that each of the ~100
        // products below is one pass over contiguous arrays (same arithmetic, same order as w * d_j^-1/2 * x_j).
        var localStart = new int[m + 1];
        for (int i = 0; i < m; i++)
        {
            int r = rows[i], c = 0;
            for (int e = graph.RowPointers[r]; e < graph.RowPointers[r + 1]; e++)
            {
                if (local[graph.ColumnIndices[e]] >= 0)
                    c++;
            }
            localStart[i + 1] = localStart[i] + c;
        }
        var localColumn = new int[localStart[m]];
        var localValue = new double[localStart[m]];
        for (int i = 0; i < m; i++)
        {
            int r = rows[i], o = localStart[i];
            for (int e = graph.RowPointers[r]; e < graph.RowPointers[r + 1]; e++)
            {
                int j = local[graph.ColumnIndices[e]];
                if (j >= 0)
                {
                    localColumn[o] = j;
                    localValue[o++] = graph.Values[e] * invSqrt[j];
                }
            }
        }

        void MatVec(double[] x, double[] y)
        {
            Parallel.For(0, (m + 4095) / 4096, b =>
            {
                int i1 = Math.Min(m, (b + 1) * 4096);
                for (int i = b * 4096; i < i1; i++)
                {
                    double s = 0;
                    for (int e = localStart[i]; e < localStart[i + 1]; e++)
                        s += localValue[e] * x[localColumn[e]];
                    y[i] = s * invSqrt[i];
                }
            });
        }

        var vectors = Lanczos.TopEigenvectors(MatVec, m, dim, trivial, seed, ct);
        if (vectors is null)
            return false;
        double maxAbs = 0;
        foreach (double v in vectors)
        {
            if (!double.IsFinite(v))
                return false;
            maxAbs = Math.Max(maxAbs, Math.Abs(v));
        }
        if (maxAbs == 0)
            return false;
        double scale = range / maxAbs;
        for (int i = 0; i < m; i++)
        {
            for (int d = 0; d < dim; d++)
                result[rows[i] * dim + d] = (float)(vectors[d * m + i] * scale + center[d]);
        }
        return true;
    }

    /// <summary>
    /// For a graph with these vertex degrees: D^-1/2, and the trivial top eigenvector sqrt(d / sum d) of
    /// D^-1/2 W D^-1/2 that the spectral layouts deflate. False when a degree is not positive and finite.
    /// </summary>
    internal static bool TryDegreeScaling(double[] degree, out double[] invSqrt, out double[] trivial)
    {
        int m = degree.Length;
        invSqrt = new double[m];
        trivial = new double[m];
        double total = 0;
        for (int i = 0; i < m; i++)
        {
            if (!(degree[i] > 0) || !double.IsFinite(degree[i]))
                return false;
            invSqrt[i] = 1 / Math.Sqrt(degree[i]);
            total += degree[i];
        }
        for (int i = 0; i < m; i++)
            trivial[i] = Math.Sqrt(degree[i] / total);
        return true;
    }

    private static int[] NewLocalMap(int rows)
    {
        var local = new int[rows];
        Array.Fill(local, -1);
        return local;
    }

    /// <summary>Connected components by union-find.</summary>
    public static (int Count, int[] Labels) ConnectedComponents(CsrGraph graph)
    {
        int n = graph.Rows;
        var parent = new int[n];
        for (int i = 0; i < n; i++)
            parent[i] = i;
        int Find(int x)
        {
            while (parent[x] != x)
            {
                parent[x] = parent[parent[x]];
                x = parent[x];
            }
            return x;
        }
        for (int i = 0; i < n; i++)
        {
            for (int e = graph.RowPointers[i]; e < graph.RowPointers[i + 1]; e++)
            {
                int a = Find(i), b = Find(graph.ColumnIndices[e]);
                if (a != b)
                    parent[Math.Max(a, b)] = Math.Min(a, b);
            }
        }
        var labels = new int[n];
        var map = new Dictionary<int, int>();
        for (int i = 0; i < n; i++)
        {
            int root = Find(i);
            if (!map.TryGetValue(root, out int label))
            {
                label = map.Count;
                map[root] = label;
            }
            labels[i] = label;
        }
        return (map.Count, labels);
    }
}
