using Microsoft.ML.ActivationAtlas.Numerics;

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

    /// <summary>A^-1/2 = U diag(1/sqrt(lambda)) U^T from a cyclic Jacobi eigen-decomposition (<see cref="SymmetricEigen"/>).</summary>
    public static double[] InverseSquareRoot(double[] a, int n)
    {
        var (values, vectors) = SymmetricEigen.Decompose((double[])a.Clone(), n);
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
}
