using Microsoft.ML.ActivationAtlas.Projection.Internal;

namespace Microsoft.ML.ActivationAtlas.Projection.Knn;

/// <summary>
/// Approximate k nearest training rows of new query rows (pynndescent's query, as umap-learn's <c>transform</c> runs
/// it): starting candidates from a random projection tree leaf (topped up with random rows when the leaf holds fewer
/// than k), then best-first search on the diversified, degree-capped <see cref="SearchGraph"/>, expanding candidates
/// while they are within the bound of the current k-th distance: umap-learn's <c>epsilon</c> 0.12 on the squared
/// euclidean distance, 0.24 for cosine on pynndescent's <c>-log2(cos)</c>.
/// </summary>
internal sealed class GraphSearch
{
    /// <summary>umap-learn's transform epsilon for euclidean (applied to squared distances, as pynndescent does).</summary>
    private const float EuclideanEpsilon = 0.12f;

    /// <summary>umap-learn's transform epsilon for angular trees (cosine), applied to <c>-log2(cos)</c>.</summary>
    private const float CosineEpsilon = 0.24f;

    private readonly PreparedData _data;
    private readonly RandomProjectionTree _tree;
    private readonly int[] _ptr;
    private readonly int[] _adj;
    private readonly int _maxDegree;
    private readonly int _seed;

    public GraphSearch(PreparedData data, KnnGraph graph, int seed, CancellationToken ct = default)
        : this(data, SearchGraph.Build(data, graph, ct), graph.K, seed)
    {
    }

    /// <summary>A search over a given graph (the benchmark compares graphs with it).</summary>
    internal GraphSearch(PreparedData data, SearchGraph search, int k, int seed)
    {
        _data = data;
        _seed = seed;
        _tree = RandomProjectionTree.Build(data, Math.Max(10, k), Rng.ForStream(seed, 4242));
        _ptr = search.RowPointers;
        _adj = search.Neighbors;
        _maxDegree = search.MaxDegree;
    }

    /// <summary>The search's epsilon, null for umap-learn's (0.12 euclidean, 0.24 cosine).</summary>
    internal float? Epsilon { get; set; }

    /// <summary>Distance evaluations made by the queries so far (a load-independent measure of search work).</summary>
    internal long DistanceEvaluations;

    /// <summary>Average number of search-graph neighbours per training row.</summary>
    public double MeanDegree => _data.Rows == 0 ? 0 : (double)_adj.Length / _data.Rows;

    /// <summary>
    /// The admission bound for reduced distances given the current k-th reduced distance <paramref name="top"/>:
    /// <c>(1 + eps) top</c> for squared euclidean; for cosine (<c>1 - cos</c>) the bound on <c>-log2(cos)</c>,
    /// <c>1 - (1 - top)^(1 + eps)</c> (no bound once <c>cos &lt;= 0</c>, where pynndescent's distance is infinite).
    /// </summary>
    private float Bound(float top)
    {
        if (_data.Metric == DistanceMetric.Euclidean)
            return (1 + (Epsilon ?? EuclideanEpsilon)) * top;
        return top < 1f ? 1f - MathF.Pow(1f - top, 1 + (Epsilon ?? CosineEpsilon)) : float.PositiveInfinity;
    }

    /// <summary>Searches the k nearest training rows of the prepared query rows.</summary>
    public KnnGraph Query(float[] queries, int rows, int k, CancellationToken ct)
    {
        int n = _data.Rows, dims = _data.Dims;
        var idx = new int[rows * k];
        var dist = new float[rows * k];
        NeighborHeap.Init(idx, dist, null);
        Parallel.For(0, rows, new ParallelOptions { CancellationToken = ct }, () => new SearchState(n, _maxDegree), (q, _, state) =>
        {
            var query = new ReadOnlySpan<float>(queries, q * dims, dims);
            var hd = dist.AsSpan(q * k, k);
            var hi = idx.AsSpan(q * k, k);
            state.NextStamp();
            state.FrontierCount = 0;
            void Visit(int j, ReadOnlySpan<float> qr, Span<float> hd2, Span<int> hi2)
            {
                float d = _data.Reduced(qr, _data.Row(j));
                state.Evaluations++;
                if (d < Bound(hd2[0]) || hi2[0] < 0)
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
                if (!(cd < Bound(hd[0])))
                    break;
                // Mark and prefetch the unvisited neighbours first, so their rows load in parallel.
                int fresh = 0;
                for (int e = _ptr[c]; e < _ptr[c + 1]; e++)
                {
                    int j = _adj[e];
                    if (state.Mark(j))
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
        }, state => Interlocked.Add(ref DistanceEvaluations, state.Evaluations));
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

        public long Evaluations;

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
