using Microsoft.ML.ActivationAtlas.Projection.Internal;

namespace Microsoft.ML.ActivationAtlas.Projection.Knn;

/// <summary>
/// Approximate k nearest training rows of new query rows (pynndescent's query): starting candidates from a random
/// projection tree leaf, then best-first search on the training kNN graph (neighbours and reverse neighbours),
/// expanding candidates within <c>(1 + epsilon)</c> of the current k-th distance.
/// </summary>
internal sealed class GraphSearch
{
    private const float Epsilon = 0.1f;

    private readonly PreparedData _data;
    private readonly RandomProjectionTree _tree;
    private readonly int[] _ptr;
    private readonly int[] _adj;
    private readonly int _seed;

    public GraphSearch(PreparedData data, KnnGraph graph, int seed)
    {
        _data = data;
        _seed = seed;
        _tree = RandomProjectionTree.Build(data, Math.Max(10, graph.K), Rng.ForStream(seed, 4242), keepHyperplanes: true);
        int n = data.Rows, k = graph.K;
        // Forward neighbours plus up to k reverse neighbours per row.
        var reverseCount = new int[n];
        for (int i = 0; i < n * k; i++)
        {
            int j = graph.Indices[i];
            if (j >= 0 && j != i / k && reverseCount[j] < k)
                reverseCount[j]++;
        }
        _ptr = new int[n + 1];
        for (int i = 0; i < n; i++)
            _ptr[i + 1] = _ptr[i] + k + reverseCount[i];
        _adj = new int[_ptr[n]];
        Array.Fill(_adj, -1);
        var fill = new int[n];
        for (int i = 0; i < n; i++)
        {
            for (int t = 0; t < k; t++)
                _adj[_ptr[i] + fill[i]++] = graph.Indices[i * k + t];
        }
        Array.Clear(reverseCount);
        for (int i = 0; i < n * k; i++)
        {
            int j = graph.Indices[i], src = i / k;
            if (j >= 0 && j != src && reverseCount[j] < k)
            {
                reverseCount[j]++;
                _adj[_ptr[j] + fill[j]++] = src;
            }
        }
    }

    /// <summary>Searches the k nearest training rows of the prepared query rows.</summary>
    public KnnGraph Query(float[] queries, int rows, int k, CancellationToken ct)
    {
        int n = _data.Rows, dims = _data.Dims;
        var idx = new int[rows * k];
        var dist = new float[rows * k];
        NeighborHeap.Init(idx, dist, null);
        float scale = _data.Metric == DistanceMetric.Euclidean ? (1 + Epsilon) * (1 + Epsilon) : 1 + Epsilon;
        int maxDegree = 0;
        for (int i = 0; i < n; i++)
            maxDegree = Math.Max(maxDegree, _ptr[i + 1] - _ptr[i]);
        Parallel.For(0, rows, new ParallelOptions { CancellationToken = ct }, () => new SearchState(n, maxDegree), (q, _, state) =>
        {
            var query = new ReadOnlySpan<float>(queries, q * dims, dims);
            var hd = dist.AsSpan(q * k, k);
            var hi = idx.AsSpan(q * k, k);
            state.NextStamp();
            state.FrontierCount = 0;
            void Visit(int j, ReadOnlySpan<float> qr, Span<float> hd2, Span<int> hi2)
            {
                float d = _data.Reduced(qr, _data.Row(j));
                if (d < hd2[0] * scale || hi2[0] < 0)
                {
                    NeighborHeap.PushUnchecked(hd2, hi2, d, j);
                    state.PushFrontier(d, j);
                }
            }
            foreach (int j in _tree.LeafOf(query, Rng.Hash((ulong)_seed, (ulong)q, 3)))
            {
                if (state.Mark(j))
                    Visit(j, query, hd, hi);
            }
            var rng = Rng.ForStream(_seed, 99, q);
            for (int attempt = 0; attempt < 4 * k && hi[0] < 0; attempt++)
            {
                int j = rng.NextInt(n);
                if (state.Mark(j))
                    Visit(j, query, hd, hi);
            }
            while (state.PopFrontier(out float cd, out int c))
            {
                if (cd > hd[0] * scale)
                    break;
                // Mark and prefetch the unvisited neighbours first, so their rows load in parallel.
                int fresh = 0;
                for (int e = _ptr[c]; e < _ptr[c + 1]; e++)
                {
                    int j = _adj[e];
                    if (j >= 0 && state.Mark(j))
                    {
                        _data.Prefetch(j);
                        state.Pending[fresh++] = j;
                    }
                }
                for (int t = 0; t < fresh; t++)
                    Visit(state.Pending[t], query, hd, hi);
            }
            NeighborHeap.Sort(hd, hi);
            for (int t = 0; t < k; t++)
                hd[t] = _data.ToTrue(hd[t]);
            return state;
        }, _ => { });
        return new KnnGraph(idx, dist, rows, k);
    }

    private sealed class SearchState(int n, int maxDegree)
    {
        public readonly int[] Pending = new int[maxDegree];

        private readonly int[] _visited = new int[n];
        private int _stamp;
        private float[] _fd = new float[256];
        private int[] _fi = new int[256];

        public int FrontierCount;

        public void NextStamp()
        {
            if (++_stamp == int.MaxValue)
            {
                Array.Clear(_visited);
                _stamp = 1;
            }
        }

        public bool Mark(int j)
        {
            if (_visited[j] == _stamp)
                return false;
            _visited[j] = _stamp;
            return true;
        }

        public void PushFrontier(float d, int j)
        {
            if (FrontierCount == _fd.Length)
            {
                Array.Resize(ref _fd, _fd.Length * 2);
                Array.Resize(ref _fi, _fi.Length * 2);
            }
            int i = FrontierCount++;
            while (i > 0)
            {
                int parent = (i - 1) / 2;
                if (_fd[parent] <= d)
                    break;
                _fd[i] = _fd[parent];
                _fi[i] = _fi[parent];
                i = parent;
            }
            _fd[i] = d;
            _fi[i] = j;
        }

        public bool PopFrontier(out float d, out int j)
        {
            if (FrontierCount == 0)
            {
                d = 0;
                j = -1;
                return false;
            }
            d = _fd[0];
            j = _fi[0];
            float ld = _fd[--FrontierCount];
            int li = _fi[FrontierCount];
            int i = 0;
            while (true)
            {
                int l = 2 * i + 1;
                if (l >= FrontierCount)
                    break;
                int c = l + 1 < FrontierCount && _fd[l + 1] < _fd[l] ? l + 1 : l;
                if (_fd[c] >= ld)
                    break;
                _fd[i] = _fd[c];
                _fi[i] = _fi[c];
                i = c;
            }
            _fd[i] = ld;
            _fi[i] = li;
            return true;
        }
    }
}
