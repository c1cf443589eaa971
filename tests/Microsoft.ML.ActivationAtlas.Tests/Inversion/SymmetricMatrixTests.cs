using Microsoft.ML.ActivationAtlas.Inversion.Objectives;
using Microsoft.ML.ActivationAtlas.Tests.Infrastructure;

namespace Microsoft.ML.ActivationAtlas.Tests.Inversion;

public sealed class SymmetricMatrixTests
{
    /// <summary>
    /// The covariance of 8x8 CIFAR-10 thumbnails (192 dimensions, eigenvalues over about six decades): its inverse
    /// square root, from the shared Jacobi eigen-solver, times the matrix times itself is the identity.
    /// </summary>
    [Fact]
    public void InverseSquareRootOfARealCovarianceIsExactToRounding()
    {
        var paths = SharedData.CifarImages(perClass: 60).Select(x => x.Path).ToList();
        int n = paths.Count, d = 3 * 8 * 8;
        float[] pixels = CifarImages.Load(paths, 8);
        var mean = new double[d];
        for (int i = 0; i < n; i++)
            for (int k = 0; k < d; k++)
                mean[k] += pixels[i * d + k] / (double)n;
        var c = new double[d * d];
        for (int i = 0; i < n; i++)
            for (int a = 0; a < d; a++)
            {
                double xa = pixels[i * d + a] - mean[a];
                for (int b = 0; b < d; b++)
                    c[a * d + b] += xa * (pixels[i * d + b] - mean[b]) / n;
            }
        double trace = Enumerable.Range(0, d).Sum(k => c[k * d + k]);
        for (int k = 0; k < d; k++)
            c[k * d + k] += 1e-6 * trace / d;

        var original = (double[])c.Clone();
        double[] w = SymmetricMatrix.InverseSquareRoot(c, d);
        Assert.Equal(original, c); // the input is left as it was

        // W C W = I, and W is symmetric.
        var wc = new double[d * d];
        for (int i = 0; i < d; i++)
            for (int k = 0; k < d; k++)
                for (int j = 0; j < d; j++)
                    wc[i * d + j] += w[i * d + k] * c[k * d + j];
        double worst = 0, asymmetry = 0;
        for (int i = 0; i < d; i++)
            for (int j = 0; j < d; j++)
            {
                double wcw = 0;
                for (int k = 0; k < d; k++)
                    wcw += wc[i * d + k] * w[k * d + j];
                worst = Math.Max(worst, Math.Abs(wcw - (i == j ? 1 : 0)));
                asymmetry = Math.Max(asymmetry, Math.Abs(w[i * d + j] - w[j * d + i]));
            }
        Assert.True(worst < 1e-7, $"max |W C W - I| = {worst:E2}");
        Assert.True(asymmetry < 1e-7 * w.Max(Math.Abs), $"max |W - W^T| = {asymmetry:E2}");
    }
}
