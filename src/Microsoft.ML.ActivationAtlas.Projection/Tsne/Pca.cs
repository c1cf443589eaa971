using Microsoft.ML.ActivationAtlas.Numerics;
using Microsoft.ML.ActivationAtlas.Projection.Internal;

namespace Microsoft.ML.ActivationAtlas.Projection.Tsne;

/// <summary>Leading principal component scores by randomized subspace iteration (as scikit-learn's randomized PCA).</summary>
internal static class Pca
{
    /// <summary>Row-major scores of the first <paramref name="components"/> principal components.</summary>
    public static float[] Scores(float[] data, int n, int dims, int components, int seed, CancellationToken ct)
    {
        int k = Math.Min(dims, components + 8);
        var mean = new double[dims];
        for (int i = 0; i < n; i++)
        {
            for (int d = 0; d < dims; d++)
                mean[d] += data[(long)i * dims + d];
        }
        for (int d = 0; d < dims; d++)
            mean[d] /= n;
        var rng = Rng.ForStream(seed, 17);
        var q = new double[dims * k]; // column-major: q[c * dims + d]
        for (int t = 0; t < q.Length; t++)
            q[t] = rng.NextGaussian();
        var z = new double[n * k];    // row-major n x k
        for (int iter = 0; iter < 8; iter++)
        {
            ct.ThrowIfCancellationRequested();
            Orthonormalize(q, dims, k);
            Project(data, n, dims, mean, q, k, z);
            // q = X' z
            var next = new double[dims * k];
            var partial = new object();
            Parallel.For(0, (n + 1023) / 1024, () => new double[dims * k], (b, _, acc) =>
            {
                for (int i = b * 1024; i < Math.Min(n, (b + 1) * 1024); i++)
                {
                    for (int c = 0; c < k; c++)
                    {
                        double zc = z[i * k + c];
                        for (int d = 0; d < dims; d++)
                            acc[c * dims + d] += (data[(long)i * dims + d] - mean[d]) * zc;
                    }
                }
                return acc;
            }, acc => { lock (partial) { for (int t = 0; t < acc.Length; t++) next[t] += acc[t]; } });
            q = next;
        }
        Orthonormalize(q, dims, k);
        Project(data, n, dims, mean, q, k, z);
        // Rotate within the subspace: eigenvectors of z'z.
        var g = new double[k * k];
        for (int i = 0; i < n; i++)
        {
            for (int a = 0; a < k; a++)
            {
                for (int b = 0; b < k; b++)
                    g[a * k + b] += z[i * k + a] * z[i * k + b];
            }
        }
        var (_, vecs) = SymmetricEigen.Decompose(g, k);
        var scores = new float[n * components];
        for (int i = 0; i < n; i++)
        {
            for (int c = 0; c < components; c++)
            {
                double s = 0;
                for (int a = 0; a < k; a++)
                    s += z[i * k + a] * vecs[a * k + c];
                scores[i * components + c] = (float)s;
            }
        }
        // Sign convention: largest absolute loading positive (deterministic).
        for (int c = 0; c < components; c++)
        {
            float maxAbs = 0, sign = 1;
            for (int i = 0; i < n; i++)
            {
                if (Math.Abs(scores[i * components + c]) > maxAbs)
                {
                    maxAbs = Math.Abs(scores[i * components + c]);
                    sign = Math.Sign(scores[i * components + c]);
                }
            }
            for (int i = 0; i < n; i++)
                scores[i * components + c] *= sign;
        }
        return scores;
    }

    private static void Project(float[] data, int n, int dims, double[] mean, double[] q, int k, double[] z)
    {
        Parallel.For(0, n, i =>
        {
            for (int c = 0; c < k; c++)
            {
                double s = 0;
                for (int d = 0; d < dims; d++)
                    s += (data[(long)i * dims + d] - mean[d]) * q[c * dims + d];
                z[i * k + c] = s;
            }
        });
    }

    private static void Orthonormalize(double[] q, int dims, int k)
    {
        for (int c = 0; c < k; c++)
        {
            var col = q.AsSpan(c * dims, dims);
            for (int p = 0; p < c; p++)
            {
                var prev = q.AsSpan(p * dims, dims);
                double dot = System.Numerics.Tensors.TensorPrimitives.Dot<double>(col, prev);
                System.Numerics.Tensors.TensorPrimitives.MultiplyAdd<double>(prev, -dot, col, col);
            }
            double norm = System.Numerics.Tensors.TensorPrimitives.Norm<double>(col);
            if (norm > 0)
                System.Numerics.Tensors.TensorPrimitives.Multiply<double>(col, 1 / norm, col);
        }
    }
}
