namespace Microsoft.ML.ActivationAtlas.Inversion.Objectives;

/// <summary>Small dense symmetric positive-definite matrix functions in double precision.</summary>
internal static class SymmetricMatrix
{
    /// <summary>A^-1 by Cholesky factorisation.</summary>
    public static double[] Inverse(double[] a, int n)
    {
        var l = (double[])a.Clone();
        for (int j = 0; j < n; j++)
        {
            double s = l[j * n + j];
            for (int k = 0; k < j; k++)
                s -= l[j * n + k] * l[j * n + k];
            if (!(s > 0))
                throw new InvalidOperationException("The activation second-moment matrix is not positive definite; raise the ridge.");
            double d = Math.Sqrt(s);
            l[j * n + j] = d;
            for (int i = j + 1; i < n; i++)
            {
                double t = l[i * n + j];
                for (int k = 0; k < j; k++)
                    t -= l[i * n + k] * l[j * n + k];
                l[i * n + j] = t / d;
            }
        }
        // Invert L (lower triangular), then A^-1 = L^-T L^-1.
        var li = new double[n * n];
        for (int i = 0; i < n; i++)
        {
            li[i * n + i] = 1.0 / l[i * n + i];
            for (int j = 0; j < i; j++)
            {
                double s = 0;
                for (int k = j; k < i; k++)
                    s -= l[i * n + k] * li[k * n + j];
                li[i * n + j] = s / l[i * n + i];
            }
        }
        var inv = new double[n * n];
        System.Threading.Tasks.Parallel.For(0, n, i =>
        {
            for (int j = 0; j <= i; j++)
            {
                double s = 0;
                for (int k = i; k < n; k++)
                    s += li[k * n + i] * li[k * n + j];
                inv[i * n + j] = s;
                inv[j * n + i] = s;
            }
        });
        return inv;
    }

    /// <summary>A^-1/2 = U diag(1/sqrt(lambda)) U^T from a cyclic Jacobi eigen-decomposition.</summary>
    public static double[] InverseSquareRoot(double[] a, int n)
    {
        var (values, vectors) = JacobiEigen(a, n);
        var result = new double[n * n];
        for (int k = 0; k < n; k++)
        {
            if (!(values[k] > 0))
                throw new InvalidOperationException("The activation covariance is not positive definite; raise the ridge.");
            double s = 1.0 / Math.Sqrt(values[k]);
            for (int i = 0; i < n; i++)
            {
                double vik = vectors[i * n + k] * s;
                if (vik == 0)
                    continue;
                for (int j = 0; j < n; j++)
                    result[i * n + j] += vik * vectors[j * n + k];
            }
        }
        return result;
    }

    /// <summary>Eigenvalues and column eigenvectors (row-major V, A = V diag V^T) by cyclic Jacobi rotations.</summary>
    public static (double[] Values, double[] Vectors) JacobiEigen(double[] input, int n)
    {
        var a = (double[])input.Clone();
        var v = new double[n * n];
        for (int i = 0; i < n; i++)
            v[i * n + i] = 1;
        for (int sweep = 0; sweep < 100; sweep++)
        {
            double off = 0, diag = 0;
            for (int i = 0; i < n; i++)
            {
                diag += a[i * n + i] * a[i * n + i];
                for (int j = i + 1; j < n; j++)
                    off += a[i * n + j] * a[i * n + j];
            }
            if (off <= 1e-24 * diag)
                break;
            for (int p = 0; p < n - 1; p++)
                for (int q = p + 1; q < n; q++)
                {
                    double apq = a[p * n + q];
                    if (Math.Abs(apq) < 1e-300)
                        continue;
                    double app = a[p * n + p], aqq = a[q * n + q];
                    double theta = (aqq - app) / (2 * apq);
                    double t = Math.Sign(theta) / (Math.Abs(theta) + Math.Sqrt(theta * theta + 1));
                    if (theta == 0)
                        t = 1;
                    double c = 1 / Math.Sqrt(t * t + 1), s = t * c;
                    for (int k = 0; k < n; k++)
                    {
                        double akp = a[k * n + p], akq = a[k * n + q];
                        a[k * n + p] = c * akp - s * akq;
                        a[k * n + q] = s * akp + c * akq;
                    }
                    for (int k = 0; k < n; k++)
                    {
                        double apk = a[p * n + k], aqk = a[q * n + k];
                        a[p * n + k] = c * apk - s * aqk;
                        a[q * n + k] = s * apk + c * aqk;
                    }
                    for (int k = 0; k < n; k++)
                    {
                        double vkp = v[k * n + p], vkq = v[k * n + q];
                        v[k * n + p] = c * vkp - s * vkq;
                        v[k * n + q] = s * vkp + c * vkq;
                    }
                }
        }
        var values = new double[n];
        for (int i = 0; i < n; i++)
            values[i] = a[i * n + i];
        return (values, v);
    }
}
