using System.Numerics.Tensors;

namespace Microsoft.ML.ActivationAtlas.Binning;

/// <summary>
/// Aggregates rows into the cells of nested grids over contiguous buffers. Rows are counting-sorted by their finest
/// Z-order cell, so the members of any cell at any level are one contiguous range. Finest sums are taken over member
/// rows (in parallel over cells); every coarser level sums its children's sums; examples are the member rows nearest
/// the cell's mean activation.
/// </summary>
internal static class GridAggregator
{
    public sealed record Settings(int MinimumCount, int TopClasses, int Examples, IReadOnlyList<string>? ClassNames);

    private sealed class Level
    {
        public int Shift;
        public int[] Codes = [];      // Z-order code of each non-empty cell at this level, ascending
        public int[] Counts = [];
        public float[] SumActivation = [];
        public float[] SumAttribution = [];
    }

    public static GridAtlas Aggregate(int[] finestCodes, float[] activations, int dim, float[]? attributions, int classes,
        GridLevels levels, Settings settings, IProgress<double>? progress = null, CancellationToken cancellationToken = default)
    {
        int n = finestCodes.Length;
        if ((long)n * dim != activations.Length)
            throw new ArgumentException($"Activation buffer holds {activations.Length} values, expected {n} rows x {dim}.", nameof(activations));
        if (attributions is not null && (long)n * classes != attributions.Length)
            throw new ArgumentException($"Attribution buffer holds {attributions.Length} values, expected {n} rows x {classes}.", nameof(attributions));
        if (attributions is null)
            classes = 0;
        var po = new ParallelOptions { CancellationToken = cancellationToken };

        // Counting sort of rows by finest code.
        int side = (int)System.Numerics.BitOperations.RoundUpToPowerOf2((uint)levels.Finest);
        int space = side * side;
        var start = new int[space + 1];
        foreach (int c in finestCodes)
            start[c + 1]++;
        for (int i = 0; i < space; i++)
            start[i + 1] += start[i];
        var order = new int[n];
        var fill = (int[])start.Clone();
        for (int i = 0; i < n; i++)
            order[fill[finestCodes[i]]++] = i;
        progress?.Report(0.1);

        // Finest level: sums over member rows.
        var finestCells = new List<int>();
        for (int c = 0; c < space; c++)
            if (start[c + 1] > start[c])
                finestCells.Add(c);
        var fine = new Level { Shift = levels.Shift(levels.Count - 1), Codes = finestCells.ToArray() };
        fine.Counts = new int[fine.Codes.Length];
        fine.SumActivation = new float[(long)fine.Codes.Length * dim];
        fine.SumAttribution = new float[(long)fine.Codes.Length * classes];
        Parallel.For(0, fine.Codes.Length, po, k =>
        {
            int c = fine.Codes[k];
            fine.Counts[k] = start[c + 1] - start[c];
            var sa = fine.SumActivation.AsSpan(k * dim, dim);
            var st = fine.SumAttribution.AsSpan(k * classes, classes);
            for (int m = start[c]; m < start[c + 1]; m++)
            {
                int row = order[m];
                TensorPrimitives.Add(sa, activations.AsSpan(row * dim, dim), sa);
                if (classes > 0)
                    TensorPrimitives.Add(st, attributions.AsSpan(row * classes, classes), st);
            }
        });
        progress?.Report(0.4);

        // Coarser levels: sum the children of the next finer level.
        var data = new Level[levels.Count];
        data[^1] = fine;
        for (int l = levels.Count - 2; l >= 0; l--)
        {
            var child = data[l + 1];
            int step = 2 * (levels.Shift(l) - child.Shift);
            var groupStart = new List<int>();
            var codes = new List<int>();
            for (int k = 0; k < child.Codes.Length; k++)
            {
                int parent = child.Codes[k] >> step;
                if (codes.Count == 0 || codes[^1] != parent)
                {
                    codes.Add(parent);
                    groupStart.Add(k);
                }
            }
            groupStart.Add(child.Codes.Length);
            var level = new Level { Shift = levels.Shift(l), Codes = codes.ToArray() };
            level.Counts = new int[codes.Count];
            level.SumActivation = new float[(long)codes.Count * dim];
            level.SumAttribution = new float[(long)codes.Count * classes];
            Parallel.For(0, codes.Count, po, g =>
            {
                var sa = level.SumActivation.AsSpan(g * dim, dim);
                var st = level.SumAttribution.AsSpan(g * classes, classes);
                for (int k = groupStart[g]; k < groupStart[g + 1]; k++)
                {
                    level.Counts[g] += child.Counts[k];
                    TensorPrimitives.Add(sa, child.SumActivation.AsSpan(k * dim, dim), sa);
                    TensorPrimitives.Add(st, child.SumAttribution.AsSpan(k * classes, classes), st);
                }
            });
            data[l] = level;
        }
        progress?.Report(0.5);

        // Means of the kept cells, level by level.
        var kept = new int[levels.Count][];
        var meanAct = new float[levels.Count][];
        var meanAttr = new float[levels.Count][];
        for (int l = 0; l < levels.Count; l++)
        {
            var level = data[l];
            var keep = Enumerable.Range(0, level.Codes.Length).Where(k => level.Counts[k] >= settings.MinimumCount).ToArray();
            kept[l] = keep;
            var ma = meanAct[l] = new float[(long)keep.Length * dim];
            var mt = meanAttr[l] = new float[(long)keep.Length * classes];
            Parallel.For(0, keep.Length, po, j =>
            {
                float inv = 1f / level.Counts[keep[j]];
                TensorPrimitives.Multiply(level.SumActivation.AsSpan(keep[j] * dim, dim), inv, ma.AsSpan(j * dim, dim));
                TensorPrimitives.Multiply(level.SumAttribution.AsSpan(keep[j] * classes, classes), inv, mt.AsSpan(j * classes, classes));
            });
        }

        // Examples: one pass over the rows in Z order, in parallel over the coarsest cells; each row is compared with
        // the mean of its cell at every level while it is in cache.
        var examples = NearestExamples(data, kept, meanAct, levels, start, order, finestCodes, activations, dim, settings.Examples, po);
        progress?.Report(0.9);

        var result = new AtlasLevel[levels.Count];
        for (int l = 0; l < levels.Count; l++)
        {
            var level = data[l];
            int size = levels.Sizes[l];
            var keep = kept[l];
            var cells = new AtlasCell[keep.Length];
            for (int j = 0; j < keep.Length; j++)
            {
                int k = keep[j];
                var top = TopClasses(meanAttr[l].AsSpan(j * classes, classes), settings.TopClasses, settings.ClassNames);
                var (x, y) = GridLevels.FromMorton(level.Codes[k]);
                cells[j] = new AtlasCell(size, x, y, level.Counts[k], meanAct[l].AsMemory(j * dim, dim), meanAttr[l].AsMemory(j * classes, classes), top, examples[l][j]);
            }
            Array.Sort(cells, (a, b) => a.Y != b.Y ? a.Y.CompareTo(b.Y) : a.X.CompareTo(b.X));
            var counts = new int[size * size];
            for (int k = 0; k < level.Codes.Length; k++)
            {
                var (x, y) = GridLevels.FromMorton(level.Codes[k]);
                counts[y * size + x] = level.Counts[k];
            }
            result[l] = new AtlasLevel(size, cells, counts);
        }
        progress?.Report(1.0);
        return new GridAtlas(result, dim, classes, settings.ClassNames, n);
    }

    private static int[][][] NearestExamples(Level[] data, int[][] kept, float[][] means, GridLevels levels, int[] start, int[] order,
        int[] finestCodes, float[] activations, int dim, int count, ParallelOptions po)
    {
        int levelCount = levels.Count;
        var rows = new int[levelCount][];
        var dist = new float[levelCount][];
        var filled = new int[levelCount][];
        var keptCodes = new int[levelCount][];
        for (int l = 0; l < levelCount; l++)
        {
            rows[l] = new int[kept[l].Length * count];
            dist[l] = new float[kept[l].Length * count];
            filled[l] = new int[kept[l].Length];
            keptCodes[l] = kept[l].Select(k => data[l].Codes[k]).ToArray();
        }
        if (count > 0)
        {
            var top = data[0];
            int topShift = 2 * top.Shift;
            Parallel.For(0, top.Codes.Length, po, g =>
            {
                int code0 = top.Codes[g];
                var pointer = new int[levelCount];
                for (int l = 0; l < levelCount; l++)
                {
                    int first = code0 << (2 * (data[0].Shift - data[l].Shift));
                    int p = Array.BinarySearch(keptCodes[l], first);
                    pointer[l] = p >= 0 ? p : ~p;
                }
                for (int m = start[code0 << topShift], end = start[(code0 + 1) << topShift]; m < end; m++)
                {
                    int row = order[m];
                    int fine = finestCodes[row];
                    var act = activations.AsSpan(row * dim, dim);
                    for (int l = 0; l < levelCount; l++)
                    {
                        int code = fine >> (2 * data[l].Shift);
                        var codes = keptCodes[l];
                        int p = pointer[l];
                        while (p < codes.Length && codes[p] < code)
                            p++;
                        pointer[l] = p;
                        if (p >= codes.Length || codes[p] != code)
                            continue; // the cell is below the minimum count
                        float d = TensorPrimitives.Distance(act, means[l].AsSpan(p * dim, dim));
                        Insert(rows[l].AsSpan(p * count, count), dist[l].AsSpan(p * count, count), ref filled[l][p], row, d);
                    }
                }
            });
        }
        var result = new int[levelCount][][];
        for (int l = 0; l < levelCount; l++)
        {
            result[l] = new int[kept[l].Length][];
            for (int j = 0; j < kept[l].Length; j++)
                result[l][j] = rows[l].AsSpan(j * count, filled[l][j]).ToArray();
        }
        return result;
    }

    /// <summary>Keeps the nearest rows, nearest first (ties: lower row first).</summary>
    private static void Insert(Span<int> rows, Span<float> dist, ref int filled, int row, float d)
    {
        int count = rows.Length;
        if (filled == count && !Before(d, row, dist[count - 1], rows[count - 1]))
            return;
        int p = filled < count ? filled++ : count - 1;
        while (p > 0 && Before(d, row, dist[p - 1], rows[p - 1]))
        {
            dist[p] = dist[p - 1];
            rows[p] = rows[p - 1];
            p--;
        }
        dist[p] = d;
        rows[p] = row;

        static bool Before(float d, int row, float otherD, int otherRow) => d < otherD || (d == otherD && row < otherRow);
    }

    /// <summary>The <paramref name="k"/> largest values of <paramref name="mean"/>, largest first (ties: lower class first).</summary>
    internal static ClassScore[] TopClasses(ReadOnlySpan<float> mean, int k, IReadOnlyList<string>? names)
    {
        k = Math.Min(k, mean.Length);
        var idx = new int[k];
        int filled = 0;
        for (int c = 0; c < mean.Length; c++)
        {
            if (filled == k && !(mean[c] > mean[idx[k - 1]]))
                continue;
            int p = filled < k ? filled++ : k - 1;
            while (p > 0 && mean[c] > mean[idx[p - 1]])
            {
                idx[p] = idx[p - 1];
                p--;
            }
            idx[p] = c;
        }
        var result = new ClassScore[k];
        for (int i = 0; i < k; i++)
            result[i] = new ClassScore(idx[i], names is not null && idx[i] < names.Count ? names[idx[i]] : idx[i].ToString(System.Globalization.CultureInfo.InvariantCulture), mean[idx[i]]);
        return result;
    }
}
