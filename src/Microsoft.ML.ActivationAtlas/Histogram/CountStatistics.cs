namespace Microsoft.ML.ActivationAtlas.Histogram;

/// <summary>
/// The statistics behind <see cref="HistogramComparison"/>: Fisher's exact test of two proportions, the
/// Benjamini-Hochberg adjustment, and the normal quantile.
/// </summary>
public static class CountStatistics
{
    private static readonly double[] s_lanczos =
    [
        0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059,
        12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7,
    ];

    /// <summary>ln(n!) (Lanczos approximation of the gamma function, about 15 significant digits).</summary>
    /// <param name="n">A count, 0 or more.</param>
    public static double LogFactorial(long n)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(n);
        if (n < 2)
            return 0;
        double x = n; // ln Γ(n + 1), Lanczos with g = 7
        double a = s_lanczos[0];
        double t = x + 7.5;
        for (int i = 1; i < s_lanczos.Length; i++)
            a += s_lanczos[i] / (x + i);
        return 0.5 * Math.Log(2 * Math.PI) + (x + 0.5) * Math.Log(t) - t + Math.Log(a);
    }

    /// <summary>
    /// Two-sided p-value of Fisher's exact test that a cell holds the same share of two datasets: <paramref name="a"/>
    /// of <paramref name="totalA"/> rows against <paramref name="b"/> of <paramref name="totalB"/>. Given the cell's
    /// <c>a + b</c> rows, <c>a</c> is hypergeometric under the null; the p-value adds the probabilities of all splits
    /// no more likely than the one seen.
    /// </summary>
    /// <param name="a">Rows of the first dataset in the cell.</param>
    /// <param name="totalA">Rows of the first dataset.</param>
    /// <param name="b">Rows of the second dataset in the cell.</param>
    /// <param name="totalB">Rows of the second dataset.</param>
    public static double FisherExactTwoSided(int a, int totalA, int b, int totalB)
    {
        if (a < 0 || b < 0 || a > totalA || b > totalB)
            throw new ArgumentOutOfRangeException(nameof(a), $"Cell counts {a} and {b} must be within the totals {totalA} and {totalB}.");
        int k = a + b, n = totalA + totalB;
        if (k == 0 || k == n)
            return 1;
        // P(x) = C(k, x) C(n - k, totalA - x) / C(n, totalA), x from lo to hi.
        int lo = Math.Max(0, totalA - (n - k)), hi = Math.Min(k, totalA);
        double constant = LogFactorial(k) + LogFactorial(n - k) + LogFactorial(totalA) + LogFactorial(totalB) - LogFactorial(n);
        double LogP(int x) => constant - LogFactorial(x) - LogFactorial(k - x) - LogFactorial(totalA - x) - LogFactorial(n - k - totalA + x);
        double observed = LogP(a);
        double bound = observed + 1e-7; // relative tolerance for ties
        double sum = 0;
        for (int x = lo; x <= hi; x++)
        {
            double lp = LogP(x);
            if (lp <= bound)
                sum += Math.Exp(lp);
        }
        return Math.Min(1, sum);
    }

    /// <summary>
    /// Benjamini-Hochberg adjusted p-values (q-values) of <paramref name="pValues"/>: a cell is significant at false
    /// discovery rate α when its q-value is at most α.
    /// </summary>
    /// <param name="pValues">The p-values of all the tests made.</param>
    public static double[] BenjaminiHochberg(ReadOnlySpan<double> pValues)
    {
        int m = pValues.Length;
        var order = new int[m];
        for (int i = 0; i < m; i++)
        {
            if (!(pValues[i] is >= 0 and <= 1))
                throw new ArgumentOutOfRangeException(nameof(pValues), $"p-value {i} is {pValues[i]}, not in [0, 1].");
            order[i] = i;
        }
        var p = pValues.ToArray();
        Array.Sort(order, (x, y) => p[x].CompareTo(p[y]));
        var q = new double[m];
        double running = 1;
        for (int r = m - 1; r >= 0; r--)
        {
            running = Math.Min(running, p[order[r]] * m / (r + 1));
            q[order[r]] = running;
        }
        return q;
    }

    /// <summary>
    /// Wilson's score interval for a proportion: <paramref name="successes"/> of <paramref name="trials"/>, at
    /// <paramref name="confidence"/> (two-sided). Unlike the normal approximation it stays inside [0, 1] and is not
    /// empty at 0 or <paramref name="trials"/> successes.
    /// </summary>
    /// <param name="successes">The count, 0 to <paramref name="trials"/>.</param>
    /// <param name="trials">The number of trials; with 0 the interval is [0, 1].</param>
    /// <param name="confidence">The confidence level. Default 0.95.</param>
    public static (double Low, double High) WilsonInterval(int successes, int trials, double confidence = 0.95)
    {
        if (trials < 0 || successes < 0 || successes > trials)
            throw new ArgumentOutOfRangeException(nameof(successes), $"{successes} successes of {trials} trials is not a proportion.");
        if (!(confidence is > 0 and < 1))
            throw new ArgumentOutOfRangeException(nameof(confidence), $"{confidence} is not in (0, 1).");
        if (trials == 0)
            return (0, 1);
        double z = NormalQuantile(0.5 + confidence / 2), n = trials, p = successes / n, z2 = z * z;
        double centre = (p + z2 / (2 * n)) / (1 + z2 / n);
        double half = z / (1 + z2 / n) * Math.Sqrt(p * (1 - p) / n + z2 / (4 * n * n));
        return (Math.Max(0, centre - half), Math.Min(1, centre + half));
    }

    /// <summary>The standard normal quantile (Acklam's rational approximation, relative error below 1.2e-9).</summary>
    /// <param name="probability">A probability in (0, 1).</param>
    public static double NormalQuantile(double probability)
    {
        if (!(probability is > 0 and < 1))
            throw new ArgumentOutOfRangeException(nameof(probability), $"{probability} is not in (0, 1).");
        double[] a = [-3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02, 1.383577518672690e+02, -3.066479806614716e+01, 2.506628277459239e+00];
        double[] b = [-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02, 6.680131188771972e+01, -1.328068155288572e+01];
        double[] c = [-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00, -2.549732539343734e+00, 4.374664141464968e+00, 2.938163982698783e+00];
        double[] d = [7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00, 3.754408661907416e+00];
        const double low = 0.02425;
        if (probability < low)
        {
            double q = Math.Sqrt(-2 * Math.Log(probability));
            return (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) / ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
        }
        if (probability > 1 - low)
            return -NormalQuantile(1 - probability);
        double u = probability - 0.5, r = u * u;
        return (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * u / (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
    }
}
