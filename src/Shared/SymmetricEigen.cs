namespace Microsoft.ML.ActivationAtlas.Numerics;

/// <summary>
/// Eigen-decomposition of a dense symmetric matrix by cyclic Jacobi rotations, in double precision. Compiled into each
/// assembly that needs it (linked source, internal).
/// </summary>
internal static class SymmetricEigen
{
    /// <summary>
    /// Decomposes the row-major <paramref name="m"/> x <paramref name="m"/> matrix <paramref name="a"/> (destroyed).
    /// Returns eigenvalues in decreasing order and the matching eigenvectors as columns of a row-major matrix
    /// (A = V diag(values) V^T).
    /// </summary>
    /// <remarks>
    /// Sweeps until the off-diagonal sum of squares is below 1e-30 of the diagonal's, or stops falling (for large
    /// matrices rounding leaves an off-diagonal floor of about m * eps^2 of the diagonal, above that bound).
    /// </remarks>
    public static (double[] Values, double[] Vectors) Decompose(double[] a, int m)
    {
        var v = new double[m * m];
        for (int i = 0; i < m; i++)
            v[i * m + i] = 1;
        double previousOff = double.PositiveInfinity;
        for (int sweep = 0; sweep < 100; sweep++)
        {
            double off = 0, diag = 0;
            for (int p = 0; p < m; p++)
            {
                diag += a[p * m + p] * a[p * m + p];
                for (int q = p + 1; q < m; q++)
                    off += a[p * m + q] * a[p * m + q];
            }
            if (off <= 1e-30 * Math.Max(diag, 1e-300) || off >= 0.9 * previousOff)
                break;
            previousOff = off;
            for (int p = 0; p < m; p++)
            {
                for (int q = p + 1; q < m; q++)
                {
                    double apq = a[p * m + q];
                    if (Math.Abs(apq) < 1e-300)
                        continue;
                    double app = a[p * m + p], aqq = a[q * m + q];
                    double theta = (aqq - app) / (2 * apq);
                    double t = Math.Sign(theta) / (Math.Abs(theta) + Math.Sqrt(theta * theta + 1));
                    if (theta == 0)
                        t = 1;
                    double c = 1 / Math.Sqrt(t * t + 1), s = t * c;
                    for (int k = 0; k < m; k++)
                    {
                        double akp = a[k * m + p], akq = a[k * m + q];
                        a[k * m + p] = c * akp - s * akq;
                        a[k * m + q] = s * akp + c * akq;
                    }
                    for (int k = 0; k < m; k++)
                    {
                        double apk = a[p * m + k], aqk = a[q * m + k];
                        a[p * m + k] = c * apk - s * aqk;
                        a[q * m + k] = s * apk + c * aqk;
                    }
                    for (int k = 0; k < m; k++)
                    {
                        double vkp = v[k * m + p], vkq = v[k * m + q];
                        v[k * m + p] = c * vkp - s * vkq;
                        v[k * m + q] = s * vkp + c * vkq;
                    }
                }
            }
        }
        var order = Enumerable.Range(0, m).OrderByDescending(i => a[i * m + i]).ToArray();
        var values = new double[m];
        var vectors = new double[m * m];
        for (int j = 0; j < m; j++)
        {
            values[j] = a[order[j] * m + order[j]];
            for (int i = 0; i < m; i++)
                vectors[i * m + j] = v[i * m + order[j]];
        }
        return (values, vectors);
    }
}
