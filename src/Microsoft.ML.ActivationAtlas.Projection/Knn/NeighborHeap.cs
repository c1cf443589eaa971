using System.Runtime.CompilerServices;

namespace Microsoft.ML.ActivationAtlas.Projection.Knn;

/// <summary>
/// Fixed-size max-heaps of neighbours stored in flat arrays (one slice of length k per row), as pynndescent keeps them:
/// the root holds the farthest kept neighbour, so it doubles as the admission threshold.
/// </summary>
internal static class NeighborHeap
{
    public static void Init(int[] idx, float[] dist, byte[]? flags)
    {
        Array.Fill(idx, -1);
        Array.Fill(dist, float.PositiveInfinity);
        if (flags is not null)
            Array.Clear(flags);
    }

    /// <summary>Pushes (d, j) unless it is not closer than the root or already present. Returns 1 when pushed.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int Push(Span<float> dist, Span<int> idx, Span<byte> flags, float d, int j, byte flag)
    {
        if (!(d < dist[0]))
            return 0;
        for (int t = 0; t < idx.Length; t++)
        {
            if (idx[t] == j)
                return 0;
        }
        SiftDown(dist, idx, flags, d, j, flag);
        return 1;
    }

    /// <summary>Pushes without the duplicate check (for callers that know j is new).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int PushUnchecked(Span<float> dist, Span<int> idx, float d, int j)
    {
        if (!(d < dist[0]))
            return 0;
        SiftDown(dist, idx, default, d, j, 0);
        return 1;
    }

    private static void SiftDown(Span<float> dist, Span<int> idx, Span<byte> flags, float d, int j, byte flag)
    {
        int size = dist.Length, i = 0;
        bool hasFlags = !flags.IsEmpty;
        while (true)
        {
            int l = 2 * i + 1, r = l + 1, swap;
            if (l >= size)
                break;
            if (r >= size)
                swap = dist[l] > d ? l : -1;
            else if (dist[l] >= dist[r])
                swap = dist[l] > d ? l : -1;
            else
                swap = dist[r] > d ? r : -1;
            if (swap < 0)
                break;
            dist[i] = dist[swap];
            idx[i] = idx[swap];
            if (hasFlags)
                flags[i] = flags[swap];
            i = swap;
        }
        dist[i] = d;
        idx[i] = j;
        if (hasFlags)
            flags[i] = flag;
    }

    /// <summary>Sorts one heap slice into increasing distance (heap sort in place; empty slots go last).</summary>
    public static void Sort(Span<float> dist, Span<int> idx)
    {
        for (int end = dist.Length - 1; end > 0; end--)
        {
            (dist[0], dist[end]) = (dist[end], dist[0]);
            (idx[0], idx[end]) = (idx[end], idx[0]);
            SiftDown(dist[..end], idx[..end], default, dist[0], idx[0], 0);
        }
    }
}
