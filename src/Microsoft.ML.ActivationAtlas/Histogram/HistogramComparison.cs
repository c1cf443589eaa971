namespace Microsoft.ML.ActivationAtlas.Histogram;

/// <summary>Settings of <see cref="HistogramComparison.Compare(ConceptHistogram, ConceptHistogram, int, HistogramComparisonOptions?)"/>.</summary>
public sealed class HistogramComparisonOptions
{
    /// <summary>False discovery rate at which cells are called significant (Benjamini-Hochberg). Default 0.05.</summary>
    public double FalseDiscoveryRate { get; set; } = 0.05;

    /// <summary>Coverage of the confidence interval of each cell's log ratio. Default 0.95.</summary>
    public double ConfidenceLevel { get; set; } = 0.95;

    /// <summary>
    /// Added to both counts of a cell before its ratio is taken (so empty cells have a finite ratio); 0.5 is the
    /// Haldane-Anscombe correction. Default 0.5.
    /// </summary>
    public double PseudoCount { get; set; } = 0.5;
}

/// <summary>
/// One cell of a <see cref="HistogramComparison"/>: its counts and shares in the two datasets, the log2 ratio of the
/// shares with its confidence interval, the p-value of Fisher's exact test and its Benjamini-Hochberg q-value.
/// </summary>
/// <param name="X">Cell column.</param>
/// <param name="Y">Cell row.</param>
/// <param name="CountA">Rows of the first dataset in the cell.</param>
/// <param name="CountB">Rows of the second dataset in the cell.</param>
/// <param name="ShareA">CountA over the first dataset's rows.</param>
/// <param name="ShareB">CountB over the second dataset's rows.</param>
/// <param name="Log2Ratio">log2 of the ratio of the shares (with the pseudo-count): 1 = twice as common in the first dataset.</param>
/// <param name="Log2RatioLow">Lower end of its confidence interval.</param>
/// <param name="Log2RatioHigh">Upper end of its confidence interval.</param>
/// <param name="PValue">Two-sided p-value of Fisher's exact test of equal shares.</param>
/// <param name="QValue">Benjamini-Hochberg adjusted p-value over the compared cells.</param>
/// <param name="Significant">Whether the q-value is at most the false discovery rate.</param>
public readonly record struct CellComparison(int X, int Y, int CountA, int CountB, double ShareA, double ShareB,
    double Log2Ratio, double Log2RatioLow, double Log2RatioHigh, double PValue, double QValue, bool Significant);

/// <summary>
/// Where two datasets differ on an atlas, with statistics: per cell of one grid, the log ratio of the two datasets'
/// shares with a confidence interval (Katz's log method on the pseudo-counted counts), and a significance corrected
/// for testing every non-empty cell (Fisher's exact test per cell, Benjamini-Hochberg over cells). Cells empty in both
/// datasets are not tested.
/// </summary>
public sealed class HistogramComparison
{
    private HistogramComparison(int gridSize, int totalA, int totalB, CellComparison[] cells, HistogramComparisonOptions options)
    {
        GridSize = gridSize;
        TotalA = totalA;
        TotalB = totalB;
        Cells = cells;
        Options = options;
    }

    /// <summary>Cells a side of the compared grid.</summary>
    public int GridSize { get; }

    /// <summary>Rows of the first dataset.</summary>
    public int TotalA { get; }

    /// <summary>Rows of the second dataset.</summary>
    public int TotalB { get; }

    /// <summary>The compared (non-empty) cells, row-major order.</summary>
    public IReadOnlyList<CellComparison> Cells { get; }

    /// <summary>The settings used.</summary>
    public HistogramComparisonOptions Options { get; }

    /// <summary>The significant cells.</summary>
    public IEnumerable<CellComparison> Significant => Cells.Where(c => c.Significant);

    /// <summary>Significant cells more common in the first dataset, largest ratio first.</summary>
    /// <param name="count">How many at most.</param>
    public IReadOnlyList<CellComparison> OverRepresented(int count) => Significant.Where(c => c.Log2Ratio > 0)
        .OrderByDescending(c => c.Log2Ratio).ThenBy(c => c.QValue).Take(count).ToArray();

    /// <summary>Significant cells less common in the first dataset, smallest ratio first.</summary>
    /// <param name="count">How many at most.</param>
    public IReadOnlyList<CellComparison> UnderRepresented(int count) => Significant.Where(c => c.Log2Ratio < 0)
        .OrderBy(c => c.Log2Ratio).ThenBy(c => c.QValue).Take(count).ToArray();

    /// <summary>Per cell of the grid, row-major: the log2 ratio where significant, else 0 (for heat maps and overlays).</summary>
    public float[] SignificantLog2Ratios()
    {
        var result = new float[GridSize * GridSize];
        foreach (var c in Significant)
            result[c.Y * GridSize + c.X] = (float)c.Log2Ratio;
        return result;
    }

    /// <summary>Compares histogram <paramref name="a"/> with <paramref name="b"/> on the grid of <paramref name="gridSize"/> cells a side.</summary>
    /// <param name="a">The first dataset's histogram.</param>
    /// <param name="b">The second dataset's histogram, on the same grids.</param>
    /// <param name="gridSize">The grid compared.</param>
    /// <param name="options">Settings; null for the defaults.</param>
    public static HistogramComparison Compare(ConceptHistogram a, ConceptHistogram b, int gridSize, HistogramComparisonOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(a);
        ArgumentNullException.ThrowIfNull(b);
        if (!a.Levels.Sizes.SequenceEqual(b.Levels.Sizes))
            throw new ArgumentException($"The histograms are on different grids ({string.Join(",", a.Levels.Sizes)} vs {string.Join(",", b.Levels.Sizes)}).", nameof(b));
        return Compare(a.Counts(gridSize), b.Counts(gridSize), gridSize, options);
    }

    /// <summary>Compares two datasets' counts on one grid (row-major, <paramref name="gridSize"/> squared of each); totals are the counts' sums.</summary>
    /// <param name="countsA">The first dataset's counts.</param>
    /// <param name="countsB">The second dataset's counts.</param>
    /// <param name="gridSize">Cells a side.</param>
    /// <param name="options">Settings; null for the defaults.</param>
    public static HistogramComparison Compare(ReadOnlySpan<int> countsA, ReadOnlySpan<int> countsB, int gridSize, HistogramComparisonOptions? options = null)
    {
        options ??= new HistogramComparisonOptions();
        if (!(options.FalseDiscoveryRate is > 0 and < 1))
            throw new ArgumentOutOfRangeException(nameof(options), $"FalseDiscoveryRate {options.FalseDiscoveryRate} is not in (0, 1).");
        if (!(options.ConfidenceLevel is > 0 and < 1))
            throw new ArgumentOutOfRangeException(nameof(options), $"ConfidenceLevel {options.ConfidenceLevel} is not in (0, 1).");
        if (!(options.PseudoCount > 0))
            throw new ArgumentOutOfRangeException(nameof(options), $"PseudoCount {options.PseudoCount} must be positive.");
        if (countsA.Length != gridSize * gridSize || countsB.Length != gridSize * gridSize)
            throw new ArgumentException($"A {gridSize}x{gridSize} grid needs {gridSize * gridSize} counts per dataset, not {countsA.Length} and {countsB.Length}.", nameof(countsA));
        long sumA = 0, sumB = 0;
        for (int i = 0; i < countsA.Length; i++)
        {
            if (countsA[i] < 0 || countsB[i] < 0)
                throw new ArgumentException($"Cell {i} has a negative count.", nameof(countsA));
            sumA += countsA[i];
            sumB += countsB[i];
        }
        if (sumA == 0 || sumB == 0)
            throw new ArgumentException($"Both datasets need rows to compare ({sumA} and {sumB}).", nameof(countsA));
        int totalA = checked((int)sumA), totalB = checked((int)sumB);

        var tested = new List<int>();
        for (int i = 0; i < countsA.Length; i++)
            if (countsA[i] + countsB[i] > 0)
                tested.Add(i);
        var p = new double[tested.Count];
        var ca = countsA.ToArray();
        var cb = countsB.ToArray();
        Parallel.For(0, tested.Count, j => p[j] = CountStatistics.FisherExactTwoSided(ca[tested[j]], totalA, cb[tested[j]], totalB));
        var q = CountStatistics.BenjaminiHochberg(p);
        double z = CountStatistics.NormalQuantile(0.5 + options.ConfidenceLevel / 2);
        double c = options.PseudoCount;
        var cells = new CellComparison[tested.Count];
        for (int j = 0; j < tested.Count; j++)
        {
            int i = tested[j];
            double a = ca[i] + c, b = cb[i] + c, na = totalA + c, nb = totalB + c;
            double log = Math.Log(a / na) - Math.Log(b / nb);
            double se = Math.Sqrt(Math.Max(0, 1 / a - 1 / na + 1 / b - 1 / nb));
            cells[j] = new CellComparison(i % gridSize, i / gridSize, ca[i], cb[i], ca[i] / (double)totalA, cb[i] / (double)totalB,
                log / Math.Log(2), (log - z * se) / Math.Log(2), (log + z * se) / Math.Log(2), p[j], q[j], q[j] <= options.FalseDiscoveryRate);
        }
        return new HistogramComparison(gridSize, totalA, totalB, cells, options);
    }
}
