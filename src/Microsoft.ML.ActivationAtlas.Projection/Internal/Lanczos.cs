using Microsoft.ML.ActivationAtlas.Numerics;

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
        // The basis vectors are allocated once and reused by every restart (a large graph's basis is hundreds of MB).
        for (int restart = 0; restart < 8; restart++)
        {
            ct.ThrowIfCancellationRequested();
            var alpha = new double[basis];
            var beta = new double[basis];
            int steps = 0;
            var v = q[0] ??= new double[n];
            start.CopyTo(v, 0);
            if (!Orthonormalize(v, q, 0, deflate))
                return result;
            for (int j = 0; j < basis; j++)
            {
                steps = j + 1;
                matVec(v, w);
                alpha[j] = Dot(w, v);
                if (j == basis - 1)
                    break;
                var next = q[j + 1] ??= new double[n];
                w.CopyTo(next, 0);
                // Three-term recurrence first; the full pass below then only removes rounding-level components.
                System.Numerics.Tensors.TensorPrimitives.MultiplyAdd<double>(v, -alpha[j], next, next);
                if (j > 0)
                    System.Numerics.Tensors.TensorPrimitives.MultiplyAdd<double>(q[j - 1], -beta[j - 1], next, next);
                if (!Orthonormalize(next, q, j + 1, deflate, out double norm))
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
            if (result is null)
                result = new double[count * n];
            else
                Array.Clear(result);
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
            var y = start; // free until the restart vector is formed below
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

    private const int OrthoBlock = 4096;

    /// <summary>
    /// Classical Gram-Schmidt against <paramref name="deflate"/> and the first <paramref name="count"/> basis vectors,
    /// repeated once when the first pass removed most of the norm ("twice is enough"), then normalisation. Each pass makes two sweeps over blocks of rows
    /// (all projections of a block, then all updates of a block), in parallel over blocks with the partial dot
    /// products summed in block order, so the result does not depend on the thread count.
    /// </summary>
    private static bool Orthonormalize(double[] v, double[][] q, int count, double[]? deflate, out double norm)
    {
        int n = v.Length;
        int m = count + (deflate is null ? 0 : 1);
        if (m > 0)
        {
            var against = new double[m][];
            int a0 = 0;
            if (deflate is not null)
                against[a0++] = deflate;
            for (int j = 0; j < count; j++)
                against[a0 + j] = q[j];
            int blocks = (n + OrthoBlock - 1) / OrthoBlock;
            var partial = new double[blocks * m];
            var coeff = new double[m];
            // A second pass only when the first cancelled most of the vector (Daniel-Gragg-Kaufman-Stewart test).
            for (int pass = 0; pass < 2; pass++)
            {
                double before = Math.Sqrt(Dot(v, v));
                Parallel.For(0, blocks, b =>
                {
                    int i0 = b * OrthoBlock, len = Math.Min(n, i0 + OrthoBlock) - i0;
                    var vb = new ReadOnlySpan<double>(v, i0, len);
                    for (int j = 0; j < m; j++)
                        partial[b * m + j] = System.Numerics.Tensors.TensorPrimitives.Dot<double>(vb, new ReadOnlySpan<double>(against[j], i0, len));
                });
                for (int j = 0; j < m; j++)
                {
                    double c = 0;
                    for (int b = 0; b < blocks; b++)
                        c += partial[b * m + j];
                    coeff[j] = -c;
                }
                Parallel.For(0, blocks, b =>
                {
                    int i0 = b * OrthoBlock, len = Math.Min(n, i0 + OrthoBlock) - i0;
                    var vb = new Span<double>(v, i0, len);
                    for (int j = 0; j < m; j++)
                        System.Numerics.Tensors.TensorPrimitives.MultiplyAdd<double>(new ReadOnlySpan<double>(against[j], i0, len), coeff[j], vb, vb);
                });
                if (Math.Sqrt(Dot(v, v)) > 0.7071067811865476 * before)
                    break;
            }
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

}
