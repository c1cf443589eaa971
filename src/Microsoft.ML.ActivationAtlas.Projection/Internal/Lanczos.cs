namespace Microsoft.ML.ActivationAtlas.Projection.Internal;

/// <summary>
/// Largest eigenpairs of a symmetric operator by explicitly restarted Lanczos with full reorthogonalisation, with
/// known eigenvectors deflated (kept orthogonal to the Krylov basis).
/// </summary>
internal static class Lanczos
{
    /// <summary>
    /// The <paramref name="count"/> eigenvectors with the largest eigenvalues orthogonal to <paramref name="deflate"/>,
    /// stored one after the other (vector d at <c>[d * n, (d + 1) * n)</c>); null when the operator is degenerate.
    /// </summary>
    public static double[]? TopEigenvectors(Action<double[], double[]> matVec, int n, int count, double[]? deflate, int seed, CancellationToken ct, double tolerance = 1e-3)
    {
        int basis = Math.Min(n - (deflate is null ? 0 : 1), Math.Max(2 * count + 8, Math.Min(100, (int)Math.Sqrt(n))));
        if (basis < count)
            return null;
        var q = new double[basis][];
        var rng = Rng.ForStream(seed, 11);
        var start = new double[n];
        for (int i = 0; i < n; i++)
            start[i] = 1.0 + 0.01 * (rng.NextDouble() - 0.5);
        var w = new double[n];
        double[]? result = null;
        for (int restart = 0; restart < 8; restart++)
        {
            ct.ThrowIfCancellationRequested();
            var alpha = new double[basis];
            var beta = new double[basis];
            int steps = 0;
            var v = (double[])start.Clone();
            if (!Orthonormalize(v, q, 0, deflate))
                return result;
            for (int j = 0; j < basis; j++)
            {
                q[j] = v;
                steps = j + 1;
                matVec(v, w);
                alpha[j] = Dot(w, v);
                var next = (double[])w.Clone();
                if (!Orthonormalize(next, q, j + 1, deflate, out double norm) || j == basis - 1)
                    break;
                beta[j] = norm;
                v = next;
            }
            var t = new double[steps * steps];
            for (int j = 0; j < steps; j++)
            {
                t[j * steps + j] = alpha[j];
                if (j + 1 < steps)
                {
                    t[j * steps + j + 1] = beta[j];
                    t[(j + 1) * steps + j] = beta[j];
                }
            }
            var (vals, vecs) = SymmetricEigen.Decompose(t, steps);
            int found = Math.Min(count, steps);
            result = new double[count * n];
            for (int d = 0; d < found; d++)
            {
                for (int j = 0; j < steps; j++)
                {
                    double c = vecs[j * steps + d];
                    var qj = q[j];
                    for (int i = 0; i < n; i++)
                        result[d * n + i] += c * qj[i];
                }
            }
            // Residual check ||A y - theta y||.
            double worst = 0;
            var y = new double[n];
            for (int d = 0; d < found; d++)
            {
                Array.Copy(result, d * n, y, 0, n);
                matVec(y, w);
                double r = 0;
                for (int i = 0; i < n; i++)
                    r += (w[i] - vals[d] * y[i]) * (w[i] - vals[d] * y[i]);
                worst = Math.Max(worst, Math.Sqrt(r));
            }
            if (worst < tolerance || steps < basis)
                return result;
            // Restart from the sum of the wanted Ritz vectors.
            Array.Clear(start);
            for (int d = 0; d < found; d++)
            {
                for (int i = 0; i < n; i++)
                    start[i] += result[d * n + i];
            }
        }
        return result;
    }

    private static bool Orthonormalize(double[] v, double[][] q, int count, double[]? deflate) => Orthonormalize(v, q, count, deflate, out _);

    private static bool Orthonormalize(double[] v, double[][] q, int count, double[]? deflate, out double norm)
    {
        for (int pass = 0; pass < 2; pass++)
        {
            if (deflate is not null)
                Axpy(-Dot(v, deflate), deflate, v);
            for (int j = 0; j < count; j++)
                Axpy(-Dot(v, q[j]), q[j], v);
        }
        norm = Math.Sqrt(Dot(v, v));
        if (!(norm > 1e-10))
            return false;
        double inv = 1 / norm;
        for (int i = 0; i < v.Length; i++)
            v[i] *= inv;
        return true;
    }

    private static double Dot(double[] a, double[] b) => System.Numerics.Tensors.TensorPrimitives.Dot<double>(a, b);

    private static void Axpy(double s, double[] x, double[] y) => System.Numerics.Tensors.TensorPrimitives.MultiplyAdd<double>(x, s, y, y);
}
