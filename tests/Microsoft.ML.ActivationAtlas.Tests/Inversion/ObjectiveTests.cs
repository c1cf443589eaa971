using Microsoft.ML.ActivationAtlas.Inversion.Objectives;
using Microsoft.ML.ActivationAtlas.Tests.Infrastructure;

namespace Microsoft.ML.ActivationAtlas.Tests.Inversion;

/// <summary>The C# objectives and their gradients (the VJP seed), and whitening.</summary>
public sealed class ObjectiveTests
{
    [Fact]
    public void ComposedObjectivesAddScaleAndMatchFiniteDifferences()
    {
        var r = new Random(4);
        int d = 9;
        var t = Enumerable.Range(0, d).Select(_ => (float)r.NextDouble()).ToArray();
        var a = t.Select(x => x + (float)(0.4 * (r.NextDouble() - 0.5))).ToArray();
        var builtIn = new ActivationObjective(d);
        var expected = new float[d];
        double expectedValue = builtIn.Evaluate(a, t, expected, new float[2 * d]);
        var g = new float[d];
        Assert.Equal(expectedValue, IconObjective.Atlas().Evaluate(a, t, g), 10);
        Assert.Equal(expected, g);

        var composed = 0.5 * IconObjective.Atlas(power: 2) + IconObjective.Direction - 0.25 * IconObjective.Direction;
        double value = composed.Evaluate(a, t, g);
        var atlas2 = new float[d];
        double atlas2Value = new ActivationObjective(d, ObjectiveKind.DirectionCosine, cosinePower: 2).Evaluate(a, t, atlas2, new float[2 * d]);
        double dot = a.Zip(t, (x, y) => (double)x * y).Sum();
        Assert.Equal(0.5 * atlas2Value + 0.75 * dot, value, 5);
        for (int k = 0; k < d; k++)
        {
            float h = 1e-3f, keep = a[k];
            a[k] = keep + h;
            double up = composed.Evaluate(a, t, new float[d]);
            a[k] = keep - h;
            double down = composed.Evaluate(a, t, new float[d]);
            a[k] = keep;
            double fd = (up - down) / (2 * h);
            Assert.True(Math.Abs(fd - g[k]) <= 1e-2 * Math.Max(1, Math.Abs(g[k])), $"channel {k}: finite difference {fd}, gradient {g[k]}");
        }
        Assert.Throws<ArgumentOutOfRangeException>(() => IconObjective.Atlas(floor: 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => double.NaN * IconObjective.Direction);
    }

    [Theory]
    [InlineData(ObjectiveKind.Direction, WhiteningKind.None)]
    [InlineData(ObjectiveKind.DirectionCosine, WhiteningKind.None)]
    [InlineData(ObjectiveKind.DirectionCosine, WhiteningKind.SecondMomentInverse)]
    [InlineData(ObjectiveKind.DirectionCosine, WhiteningKind.Zca)]
    public void GradientMatchesFiniteDifferences(ObjectiveKind kind, WhiteningKind whiteningKind)
    {
        var r = new Random(1);
        int d = 7;
        var acts = Enumerable.Range(0, 200 * d).Select(_ => (float)Math.Max(0, r.NextDouble() * 2 - 0.5)).ToArray();
        var whitening = whiteningKind == WhiteningKind.None ? null : Whitening.Fit(acts, d, whiteningKind);
        var objective = new ActivationObjective(d, kind, whitening: whitening);
        var v = Enumerable.Range(0, d).Select(_ => (float)r.NextDouble()).ToArray();
        var t = new float[d];
        objective.PrepareTarget(v, t);
        // An activation close to the target so the cosine is above the floor, plus noise.
        var a = v.Select(x => x + (float)(0.3 * (r.NextDouble() - 0.5))).ToArray();
        var g = new float[d];
        var scratch = new float[2 * d];
        objective.Evaluate(a, t, g, scratch);
        for (int k = 0; k < d; k++)
        {
            var ap = (float[])a.Clone();
            var am = (float[])a.Clone();
            ap[k] += 1e-3f;
            am[k] -= 1e-3f;
            double fd = (objective.Evaluate(ap, t, [], scratch) - objective.Evaluate(am, t, [], scratch)) / 2e-3;
            Assert.True(Math.Abs(fd - g[k]) <= 2e-2 * Math.Max(1e-2, Math.Abs(fd)), $"channel {k}: fd {fd} vs {g[k]}");
        }
    }

    [Fact]
    public void CosineObjectivePrefersAlignedActivationsOfEqualDot()
    {
        var objective = new ActivationObjective(2);
        float[] t = [1, 0];
        var s = new float[4];
        // Same dot product (1) but the second activation is far off-axis: the cos^4 factor punishes it.
        double aligned = objective.Evaluate([1, 0], t, [], s), skewed = objective.Evaluate([1, 5], t, [], s);
        Assert.True(aligned > 10 * skewed, $"{aligned} vs {skewed}");
        // Below the floor (cos 0.1) the factor is the constant 0.1^4.
        Assert.Equal(-1 * Math.Pow(0.1, 4), objective.Evaluate([-1, 0], t, [], s), 8);
    }

    [Fact]
    public void SecondMomentWhiteningIsTheInverseSecondMoment()
    {
        var r = new Random(2);
        int n = 500, d = 5;
        var acts = Enumerable.Range(0, n * d).Select(i => (float)(r.NextDouble() + (i % d == 0 ? 2 : 0))).ToArray();
        var w = Whitening.Fit(acts, d, WhiteningKind.SecondMomentInverse, ridge: 0);
        var m = new double[d * d];
        for (int i = 0; i < n; i++)
            for (int a = 0; a < d; a++)
                for (int b = 0; b < d; b++)
                    m[a * d + b] += acts[i * d + a] * acts[i * d + b] / (double)n;
        for (int a = 0; a < d; a++)
            for (int b = 0; b < d; b++)
            {
                double s = 0;
                for (int k = 0; k < d; k++)
                    s += w.Matrix[a * d + k] * m[k * d + b];
                Assert.Equal(a == b ? 1.0 : 0.0, s, 3);
            }
    }

    [Fact]
    public void ZcaWhitenedActivationsHaveIdentityCovariance()
    {
        var r = new Random(3);
        int n = 2000, d = 4;
        var acts = new float[n * d];
        for (int i = 0; i < n; i++)
        {
            double z0 = r.NextDouble(), z1 = r.NextDouble();
            acts[i * d] = (float)(3 * z0 + 1);
            acts[i * d + 1] = (float)(z0 + z1);
            acts[i * d + 2] = (float)(0.5 * z1 - 2 + r.NextDouble());
            acts[i * d + 3] = (float)r.NextDouble();
        }
        var w = Whitening.Fit(acts, d, WhiteningKind.Zca, ridge: 0);
        var white = new double[n * d];
        var o = new float[d];
        var s = new float[d];
        for (int i = 0; i < n; i++)
        {
            w.TransformActivation(acts.AsSpan(i * d, d), o, s);
            for (int k = 0; k < d; k++)
                white[i * d + k] = o[k];
        }
        for (int a = 0; a < d; a++)
        {
            Assert.Equal(0.0, Enumerable.Range(0, n).Average(i => white[i * d + a]), 3);
            for (int b = 0; b < d; b++)
                Assert.Equal(a == b ? 1.0 : 0.0, Enumerable.Range(0, n).Average(i => white[i * d + a] * white[i * d + b]), 2);
        }
        // W is symmetric (ZCA, not PCA whitening).
        for (int a = 0; a < d; a++)
            for (int b = 0; b < d; b++)
                Assert.Equal(w.Matrix[a * d + b], w.Matrix[b * d + a], 4);
    }

    [Fact]
    public void WhiteningRejectsBadActivations()
    {
        var ex = Assert.Throws<ArgumentException>(() => Whitening.Fit(new float[] { 1, 2, float.NaN, 4 }, 2, WhiteningKind.Zca));
        Assert.Contains("row 1", ex.Message);
        Assert.Throws<ArgumentException>(() => Whitening.Fit(new float[] { 1, 2, 3 }, 2, WhiteningKind.Zca));
        Assert.Throws<ArgumentException>(() => new ActivationObjective(3, whitening: Whitening.Fit(new float[] { 1, 2, 3, 4 }, 2, WhiteningKind.Zca)));
    }

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
