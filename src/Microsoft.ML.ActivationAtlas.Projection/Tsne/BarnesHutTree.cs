namespace Microsoft.ML.ActivationAtlas.Projection.Tsne;

/// <summary>
/// A space-partitioning tree over 1-D (binary) or 2-D (quad) layouts, stored in flat arrays, for the Barnes-Hut
/// approximation of t-SNE's repulsive forces. Rebuilt every iteration; buffers are reused.
/// </summary>
internal sealed class BarnesHutTree
{
    private const int MaxDepth = 48;

    private readonly int _dim;
    private readonly int _fan;
    private int[] _order;
    private float[] _mass = new float[64];      // centre of mass, dim per node
    private float[] _width = new float[16];     // largest side of the cell
    private int[] _count = new int[16];
    private int[] _firstChild = new int[16];    // -1 for a leaf
    private int _nodes;

    public BarnesHutTree(int dim, int n)
    {
        _dim = dim;
        _fan = 1 << dim;
        _order = new int[n];
    }

    public void Build(float[] y, int n)
    {
        if (_order.Length < n)
            _order = new int[n];
        for (int i = 0; i < n; i++)
            _order[i] = i;
        Span<float> lo = stackalloc float[2], hi = stackalloc float[2];
        for (int d = 0; d < _dim; d++)
        {
            lo[d] = float.PositiveInfinity;
            hi[d] = float.NegativeInfinity;
        }
        for (int i = 0; i < n; i++)
        {
            for (int d = 0; d < _dim; d++)
            {
                lo[d] = Math.Min(lo[d], y[i * _dim + d]);
                hi[d] = Math.Max(hi[d], y[i * _dim + d]);
            }
        }
        _nodes = 0;
        var stack = new Stack<(int Node, int Start, int End, float C0, float C1, float Half, int Depth)>();
        float half = 0;
        for (int d = 0; d < _dim; d++)
            half = Math.Max(half, (hi[d] - lo[d]) / 2 * (1 + 1e-5f) + 1e-5f);
        int root = NewNode();
        stack.Push((root, 0, n, (lo[0] + hi[0]) / 2, _dim > 1 ? (lo[1] + hi[1]) / 2 : 0, half, 0));
        Span<int> counts = stackalloc int[4];
        Span<int> starts = stackalloc int[5];
        Span<int> next = stackalloc int[4];
        while (stack.Count > 0)
        {
            var (node, start, end, c0, c1, h, depth) = stack.Pop();
            int count = end - start;
            _count[node] = count;
            _width[node] = 2 * h;
            // centre of mass
            double m0 = 0, m1 = 0;
            for (int t = start; t < end; t++)
            {
                int i = _order[t];
                m0 += y[i * _dim];
                if (_dim > 1)
                    m1 += y[i * _dim + 1];
            }
            _mass[node * 2] = (float)(m0 / count);
            _mass[node * 2 + 1] = (float)(m1 / count);
            if (count <= 1 || depth >= MaxDepth || AllSame(y, start, end))
            {
                _firstChild[node] = -1;
                continue;
            }
            // Partition into 2^dim children by quadrant (counting sort on a quadrant code).
            counts.Clear();
            for (int t = start; t < end; t++)
                counts[Quadrant(y, _order[t], c0, c1)]++;
            starts[0] = start;
            for (int q = 0; q < _fan; q++)
                starts[q + 1] = starts[q] + counts[q];
            // in-place cycle sort by quadrant
            for (int q = 0; q < _fan; q++)
                next[q] = starts[q];
            for (int q = 0; q < _fan; q++)
            {
                while (next[q] < starts[q + 1])
                {
                    int t = next[q];
                    int i = _order[t];
                    int qi = Quadrant(y, i, c0, c1);
                    if (qi == q)
                    {
                        next[q]++;
                    }
                    else
                    {
                        int dst = next[qi]++;
                        (_order[t], _order[dst]) = (_order[dst], _order[t]);
                    }
                }
            }
            int first = _nodes;
            for (int q = 0; q < _fan; q++)
                NewNode();
            _firstChild[node] = first;
            float hh = h / 2;
            for (int q = 0; q < _fan; q++)
            {
                float nc0 = c0 + ((q & 1) != 0 ? hh : -hh);
                float nc1 = _dim > 1 ? c1 + ((q & 2) != 0 ? hh : -hh) : 0;
                if (counts[q] == 0)
                {
                    _count[first + q] = 0;
                    _firstChild[first + q] = -1;
                    continue;
                }
                stack.Push((first + q, starts[q], starts[q + 1], nc0, nc1, hh, depth + 1));
            }
        }
    }

    private bool AllSame(float[] y, int start, int end)
    {
        int a = _order[start];
        for (int t = start + 1; t < end; t++)
        {
            int b = _order[t];
            for (int d = 0; d < _dim; d++)
            {
                if (y[a * _dim + d] != y[b * _dim + d])
                    return false;
            }
        }
        return true;
    }

    private int Quadrant(float[] y, int i, float c0, float c1)
    {
        int q = y[i * _dim] > c0 ? 1 : 0;
        if (_dim > 1 && y[i * _dim + 1] > c1)
            q |= 2;
        return q;
    }

    private int NewNode()
    {
        if (_nodes == _count.Length)
        {
            Array.Resize(ref _count, _nodes * 2);
            Array.Resize(ref _width, _nodes * 2);
            Array.Resize(ref _firstChild, _nodes * 2);
            Array.Resize(ref _mass, _nodes * 4);
        }
        _count[_nodes] = 0;
        _firstChild[_nodes] = -1;
        return _nodes++;
    }

    /// <summary>
    /// Repulsive force on point <paramref name="i"/> (unnormalised: sum of count * q^2 * (y_i - y_cell)) into
    /// <paramref name="force"/>; returns its contribution to Z = sum of q over all other points.
    /// </summary>
    public double Repulsion(float[] y, int i, float theta, Span<double> force, int[] stack)
    {
        double z = 0;
        float yi0 = y[i * _dim], yi1 = _dim > 1 ? y[i * _dim + 1] : 0;
        double f0 = 0, f1 = 0;
        float theta2 = theta * theta;
        int top = 0;
        stack[top++] = 0;
        while (top > 0)
        {
            int node = stack[--top];
            int count = _count[node];
            if (count == 0)
                continue;
            float d0 = yi0 - _mass[node * 2], d1 = _dim > 1 ? yi1 - _mass[node * 2 + 1] : 0;
            float dist2 = d0 * d0 + d1 * d1;
            bool leaf = _firstChild[node] < 0;
            if (leaf || _width[node] * _width[node] < theta2 * dist2)
            {
                if (dist2 == 0)
                {
                    // The point itself (and exact duplicates): q = 1, no force.
                    z += count - 1;
                    continue;
                }
                float q = 1f / (1f + dist2);
                z += count * q;
                float mult = count * q * q;
                f0 += mult * d0;
                f1 += mult * d1;
            }
            else
            {
                int first = _firstChild[node];
                for (int c = 0; c < _fan; c++)
                    stack[top++] = first + c;
            }
        }
        force[0] = f0;
        if (_dim > 1)
            force[1] = f1;
        return z;
    }

    /// <summary>Stack size a traversal may need.</summary>
    public int StackSize => (MaxDepth + 2) * _fan + 8;
}
