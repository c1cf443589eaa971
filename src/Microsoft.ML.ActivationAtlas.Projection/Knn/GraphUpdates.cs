namespace Microsoft.ML.ActivationAtlas.Projection.Knn;

/// <summary>
/// Candidate (p, q, d) edges produced in parallel chunks and applied to the neighbour heaps afterwards.
/// Application is partitioned by target row and keeps the global chunk order, so the result does not depend
/// on the number of threads or their timing.
/// </summary>
internal sealed class GraphUpdates
{
    private Chunk[] _chunks = [];

    public Chunk Get(int chunk) => _chunks[chunk];

    public void Reset(int chunkCount)
    {
        if (_chunks.Length < chunkCount)
        {
            var grown = new Chunk[chunkCount];
            Array.Copy(_chunks, grown, _chunks.Length);
            for (int c = _chunks.Length; c < chunkCount; c++)
                grown[c] = new Chunk();
            _chunks = grown;
        }
        for (int c = 0; c < chunkCount; c++)
            _chunks[c].Count = 0;
        ChunkCount = chunkCount;
    }

    public int ChunkCount { get; private set; }

    /// <summary>Pushes every update into both endpoint heaps; returns how many pushes changed a heap.</summary>
    public long Apply(int[] heapIdx, float[] heapDist, byte[] heapFlags, int k, CancellationToken ct)
    {
        int parts = Math.Max(1, Environment.ProcessorCount);
        long total = 0;
        Parallel.For(0, parts, new ParallelOptions { CancellationToken = ct }, () => 0L, (t, _, local) =>
        {
            for (int c = 0; c < ChunkCount; c++)
            {
                var ch = _chunks[c];
                for (int u = 0; u < ch.Count; u++)
                {
                    int p = ch.P[u], q = ch.Q[u];
                    float d = ch.D[u];
                    if (p % parts == t)
                        local += NeighborHeap.Push(heapDist.AsSpan(p * k, k), heapIdx.AsSpan(p * k, k), heapFlags.AsSpan(p * k, k), d, q, 1);
                    if (q % parts == t)
                        local += NeighborHeap.Push(heapDist.AsSpan(q * k, k), heapIdx.AsSpan(q * k, k), heapFlags.AsSpan(q * k, k), d, p, 1);
                }
            }
            return local;
        }, local => Interlocked.Add(ref total, local));
        return total;
    }

    /// <summary>One chunk's growable update list.</summary>
    internal sealed class Chunk
    {
        public int[] P = new int[1024];
        public int[] Q = new int[1024];
        public float[] D = new float[1024];
        public int Count;

        public void Add(int p, int q, float d)
        {
            if (Count == P.Length)
            {
                Array.Resize(ref P, Count * 2);
                Array.Resize(ref Q, Count * 2);
                Array.Resize(ref D, Count * 2);
            }
            P[Count] = p;
            Q[Count] = q;
            D[Count] = d;
            Count++;
        }
    }
}
