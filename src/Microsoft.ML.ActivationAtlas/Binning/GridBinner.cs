namespace Microsoft.ML.ActivationAtlas.Binning;

/// <summary>
/// Bins 2-D layout points into nested grids in one O(N) pass over contiguous buffers, in parallel blocks.
/// Every point gets its finest cell (as a Z-order code); coarser cells and counts follow from it exactly.
/// </summary>
internal static class GridBinner
{
    private const int BlockSize = 16384;

    /// <summary>
    /// The finest-cell Z-order code of each interleaved (x, y) point of <paramref name="xy"/>
    /// (see <see cref="GridLevels.Morton"/>; decode with <see cref="GridLevels.FromMorton"/>).
    /// </summary>
    public static int[] FinestCodes(float[] xy, GridNormalization normalization, GridLevels levels, CancellationToken cancellationToken = default)
    {
        if (xy.Length % 2 != 0)
            throw new ArgumentException("Layout buffer must hold (x, y) pairs.", nameof(xy));
        int n = xy.Length / 2;
        var codes = new int[n];
        int finest = levels.Finest;
        int blocks = (n + BlockSize - 1) / BlockSize;
        Parallel.For(0, blocks, new ParallelOptions { CancellationToken = cancellationToken }, b =>
        {
            int end = Math.Min(n, (b + 1) * BlockSize);
            for (int i = b * BlockSize; i < end; i++)
            {
                var (u, v) = normalization.Normalize(xy[2 * i], xy[2 * i + 1]);
                codes[i] = GridLevels.Morton(GridLevels.Index(u, finest), GridLevels.Index(v, finest));
            }
        });
        return codes;
    }

    /// <summary>
    /// Counts per cell for every level, row-major (<c>counts[level][y * size + x]</c>): the finest level is counted
    /// from <paramref name="finestCodes"/>, each coarser level is the sum of its children.
    /// </summary>
    public static int[][] Counts(int[] finestCodes, GridLevels levels)
    {
        int finest = levels.Finest;
        int n = finestCodes.Length;
        int blocks = Math.Max(1, Math.Min(Environment.ProcessorCount * 4, (n + BlockSize - 1) / BlockSize));
        var fine = new int[finest * finest];
        object gate = new();
        Parallel.For(0, blocks, () => new int[finest * finest], (b, _, local) =>
        {
            long start = (long)n * b / blocks, end = (long)n * (b + 1) / blocks;
            for (long i = start; i < end; i++)
            {
                var (x, y) = GridLevels.FromMorton(finestCodes[i]);
                local[y * finest + x]++;
            }
            return local;
        }, local =>
        {
            lock (gate)
                System.Numerics.Tensors.TensorPrimitives.Add(fine, local, fine);
        });

        var result = new int[levels.Count][];
        result[^1] = fine;
        for (int l = levels.Count - 2; l >= 0; l--)
            result[l] = SumChildren(result[l + 1], levels.Sizes[l + 1], levels.Sizes[l]);
        return result;
    }

    /// <summary>Sums a fine row-major grid into a coarser one whose size divides it.</summary>
    public static int[] SumChildren(int[] fine, int fineSize, int coarseSize)
    {
        int ratio = fineSize / coarseSize;
        var coarse = new int[coarseSize * coarseSize];
        for (int y = 0; y < fineSize; y++)
        {
            int cy = y / ratio;
            for (int x = 0; x < fineSize; x++)
                coarse[cy * coarseSize + x / ratio] += fine[y * fineSize + x];
        }
        return coarse;
    }
}
