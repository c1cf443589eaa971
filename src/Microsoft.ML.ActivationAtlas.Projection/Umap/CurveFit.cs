namespace Microsoft.ML.ActivationAtlas.Projection.Umap;

/// <summary>
/// Fits UMAP's low-dimensional similarity <c>1 / (1 + a d^(2b))</c> to the target curve (1 below <c>minDist</c>,
/// <c>exp(-(d - minDist) / spread)</c> above) on 300 points of [0, 3 spread], by Levenberg-Marquardt least squares
/// from (1, 1), as umap-learn's <c>find_ab_params</c> does with scipy's <c>curve_fit</c>.
/// </summary>
public static class CurveFit
{
    /// <summary>The fitted (a, b) for <paramref name="spread"/> and <paramref name="minDist"/>.</summary>
    /// <param name="spread">The effective scale of embedded points (umap-learn default 1).</param>
    /// <param name="minDist">How tightly points may pack (umap-learn default 0.1).</param>
    public static (float A, float B) FindAB(double spread, double minDist)
    {
        if (!(spread > 0) || !double.IsFinite(spread))
            throw new ArgumentOutOfRangeException(nameof(spread), spread, "Spread must be a positive number.");
        if (!(minDist >= 0) || minDist > spread)
            throw new ArgumentOutOfRangeException(nameof(minDist), minDist, "MinDist must be between 0 and Spread.");
        const int m = 300;
        var x = new double[m];
        var y = new double[m];
        for (int i = 0; i < m; i++)
        {
            x[i] = spread * 3.0 * i / (m - 1);
            y[i] = x[i] < minDist ? 1.0 : Math.Exp(-(x[i] - minDist) / spread);
        }
        double a = 1, b = 1, lambda = 1e-3;
        double cost = Cost(x, y, a, b);
        for (int iter = 0; iter < 500; iter++)
        {
            double jaa = 0, jab = 0, jbb = 0, ga = 0, gb = 0;
            for (int i = 0; i < m; i++)
            {
                if (x[i] <= 0)
                    continue;
                double u = Math.Pow(x[i], 2 * b);
                double den = 1 + a * u;
                double f = 1 / den;
                double r = f - y[i];
                double da = -u / (den * den);
                double db = -a * u * 2 * Math.Log(x[i]) / (den * den);
                jaa += da * da; jab += da * db; jbb += db * db;
                ga += da * r; gb += db * r;
            }
            bool improved = false;
            for (int tries = 0; tries < 30 && !improved; tries++)
            {
                double maa = jaa * (1 + lambda), mbb = jbb * (1 + lambda);
                double det = maa * mbb - jab * jab;
                if (det == 0)
                {
                    lambda *= 10;
                    continue;
                }
                double stepA = -(mbb * ga - jab * gb) / det;
                double stepB = -(maa * gb - jab * ga) / det;
                double na = a + stepA, nb = b + stepB;
                double nc = na > 0 && nb > 0 ? Cost(x, y, na, nb) : double.PositiveInfinity;
                if (nc < cost)
                {
                    bool converged = Math.Abs(cost - nc) <= 1e-15 * Math.Max(1, cost) && Math.Abs(stepA) + Math.Abs(stepB) < 1e-12;
                    a = na; b = nb; cost = nc;
                    lambda = Math.Max(lambda / 10, 1e-12);
                    improved = true;
                    if (converged)
                        return ((float)a, (float)b);
                }
                else
                {
                    lambda *= 10;
                }
            }
            if (!improved)
                break;
        }
        return ((float)a, (float)b);
    }

    private static double Cost(double[] x, double[] y, double a, double b)
    {
        double s = 0;
        for (int i = 0; i < x.Length; i++)
        {
            double f = 1 / (1 + a * Math.Pow(x[i], 2 * b));
            s += (f - y[i]) * (f - y[i]);
        }
        return s;
    }
}
