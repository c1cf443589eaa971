using Microsoft.ML.ActivationAtlas.Inversion.Parameterization;
using Microsoft.ML.ActivationAtlas.Inversion.Transforms;

namespace Microsoft.ML.ActivationAtlas.Tests.Inversion;

/// <summary>Properties of lucid's image parameterisation and the atlas transforms.</summary>
public sealed class ParameterizationTests
{
    [Fact]
    public void ColorMatrixIsLucidsSvdSqrtNormalisedByLargestColumnNorm()
    {
        var m = ColorDecorrelation.Matrix.ToArray();
        double[] raw = [0.26, 0.09, 0.02, 0.27, 0.00, -0.05, 0.27, -0.09, 0.03];
        double norm0 = Math.Sqrt(0.26 * 0.26 + 0.27 * 0.27 + 0.27 * 0.27); // the largest column
        for (int i = 0; i < 9; i++)
            Assert.Equal(raw[i] / norm0, m[i], 5);
        double maxColumn = Enumerable.Range(0, 3).Max(j => Math.Sqrt(m[j] * m[j] + m[3 + j] * m[3 + j] + m[6 + j] * m[6 + j]));
        Assert.Equal(1.0, maxColumn, 5);
    }

    [Fact]
    public void FourierScaleIsInverseFrequencyTimesSqrtAreaOverFour()
    {
        var p = new FourierImageParameterization(80, 80);
        var scale = p.SpectrumScale;
        int fw = 41;
        Assert.Equal(80 * 80 / 4.0, scale[0], 2);                    // DC: frequency floored at 1/80 -> 80 * 80 / 4
        Assert.Equal(80 / 4.0 / (1.0 / 80), scale[1], 2);             // (0, 1): f = 1/80
        Assert.Equal(80 / 4.0 / 0.5, scale[40], 3);                   // (0, 40): f = 0.5
        double f = Math.Sqrt(0.25 * 0.25 + 0.1 * 0.1);                // (ky=20, kx=8): fy = 20/80, fx = 8/80
        Assert.Equal(80 / 4.0 / f, scale[20 * fw + 8], 3);
        // Lower frequencies get larger scales: the spectrum is 1/f.
        Assert.True(scale[1] > scale[2] && scale[2] > scale[10]);
    }

    [Fact]
    public void InitialFourierImageIsNearGreyWithLowFrequencyNoise()
    {
        // Spectrum N(0, 0.01): after scaling and the inverse FFT the pre-sigmoid image is small, so the icon starts
        // close to grey 0.5, and (1/f scaling) neighbouring pixels are strongly correlated, unlike white noise.
        var p = new ImageParameterization(64, 64);
        var theta = new float[p.ParameterCount];
        p.Initialize(theta, new Random(11));
        double mean = theta.Average(v => (double)v), sd = Math.Sqrt(theta.Average(v => (double)v * v));
        Assert.InRange(mean, -0.001, 0.001);
        Assert.InRange(sd, 0.009, 0.011);
        var image = new float[p.ImageSize];
        p.Forward(theta, image, p.CreateWorkspace());
        Assert.All(image, v => Assert.InRange(v, 0.2f, 0.8f));
        Assert.InRange(image.Average(v => (double)v), 0.45, 0.55);
        double neighbour = Correlation(image, 0, 1, 64), far = Correlation(image, 0, 20, 64);
        Assert.True(neighbour > 0.5, $"neighbouring pixels correlate {neighbour}");
        Assert.True(neighbour > far + 0.2, $"correlation falls with distance: {neighbour} vs {far}");
    }

    [Fact]
    public void PixelBasisWhiteNoiseHasNoSpatialCorrelation()
    {
        var p = new ImageParameterization(64, 64, ImageBasis.Pixel, decorrelateColors: false);
        var theta = new float[p.ParameterCount];
        p.Initialize(theta, new Random(12));
        var image = new float[p.ImageSize];
        p.Forward(theta, image, p.CreateWorkspace());
        Assert.InRange(Correlation(image, 0, 1, 64), -0.1, 0.1);
        Assert.All(image, v => Assert.InRange(v, 0.45f, 0.55f));
    }

    [Fact]
    public void SigmoidKeepsPixelsInUnitRangeForLargeParameters()
    {
        var p = new ImageParameterization(16, 16);
        var theta = new float[p.ParameterCount];
        p.Initialize(theta, new Random(13));
        for (int i = 0; i < theta.Length; i++)
            theta[i] *= 1000;
        var image = new float[p.ImageSize];
        p.Forward(theta, image, p.CreateWorkspace());
        Assert.All(image, v => Assert.InRange(v, 0f, 1f));
        Assert.Contains(image, v => v < 0.05f);
        Assert.Contains(image, v => v > 0.95f);
    }

    [Fact]
    public void BackwardMatchesFiniteDifferencesOfTheFullParameterisation()
    {
        var p = new ImageParameterization(10, 12);
        var random = new Random(14);
        var theta = new float[p.ParameterCount];
        p.Initialize(theta, random);
        for (int i = 0; i < theta.Length; i++)
            theta[i] *= 30; // away from the linear regime of the sigmoid
        AssertBackwardMatchesFiniteDifferences(p, theta, random, [0, 1, 7, 50, p.ParameterCount / 2 + 3, p.ParameterCount - 1]);
    }

    /// <summary>
    /// Checks <see cref="ImageParameterization.Backward"/> at <paramref name="theta"/> against central differences of
    /// the loss sum(image * w) for a random w, at the given parameter indices.
    /// </summary>
    internal static void AssertBackwardMatchesFiniteDifferences(ImageParameterization p, float[] theta, Random random, int[] indices)
    {
        var ws = p.CreateWorkspace();
        var w = Enumerable.Range(0, p.ImageSize).Select(_ => (float)(random.NextDouble() - 0.5)).ToArray();
        var image = new float[p.ImageSize];
        p.Forward(theta, image, ws);
        var grad = new float[p.ParameterCount];
        p.Backward(theta, image, w, grad, ws);
        double Loss(float[] t)
        {
            var img = new float[p.ImageSize];
            p.Forward(t, img, ws);
            double s = 0;
            for (int i = 0; i < img.Length; i++)
                s += (double)img[i] * w[i];
            return s;
        }
        foreach (int k in indices)
        {
            var tp = (float[])theta.Clone();
            var tm = (float[])theta.Clone();
            float h = 1e-2f;
            tp[k] += h;
            tm[k] -= h;
            double fd = (Loss(tp) - Loss(tm)) / (2 * h);
            Assert.True(Math.Abs(fd - grad[k]) <= 2e-2 * Math.Max(1e-2, Math.Abs(fd)), $"param {k}: fd {fd} vs {grad[k]}");
        }
    }

    [Fact]
    public void AtlasTransformsMatchTheArticleSettings()
    {
        var t = RobustnessTransforms.Atlas(80);
        Assert.Equal(10, t.Count);
        var pad = Assert.IsType<PadTransform>(t[0]);
        Assert.Equal((16, 0.5f), (pad.Pixels, pad.Value));
        Assert.Equal(new[] { 4, 4, 8, 8, 8 }, t.Skip(1).Take(5).Select(x => Assert.IsType<JitterTransform>(x).Pixels));
        var scale = Assert.IsType<RandomScaleTransform>(t[6]);
        Assert.Equal(20, scale.Scales.Count);
        Assert.Equal(Math.Pow(0.998, 20), scale.Scales[0], 10);
        Assert.Equal(Math.Pow(0.998, 39), scale.Scales[^1], 10);
        var rot = Assert.IsType<RandomRotateTransform>(t[7]);
        Assert.Equal(40 + 20 + 10 + 5, rot.Degrees.Count);
        Assert.Equal(-20, rot.Degrees.Min());
        Assert.Equal(19, rot.Degrees.Max());
        Assert.Equal(2, Assert.IsType<JitterTransform>(t[8]).Pixels);
        Assert.Equal(80, Assert.IsType<CropOrPadTransform>(t[9]).Height);
    }

    [Fact]
    public void TransformsAreDrawnIndependentlyAndReproducibly()
    {
        // Two icons with different streams see different draws; the same stream reproduces the same draw.
        var img = Enumerable.Range(0, 3 * 40 * 40).Select(i => (float)((i * 7919) % 101) / 101f).ToArray();
        float[] Run(int seed)
        {
            var chain = new TransformChain();
            chain.Draw(RobustnessTransforms.Atlas(40), new Random(seed), 40, 40, 40, 40);
            var o = new float[3 * 40 * 40];
            chain.Forward(img, o);
            return o;
        }
        Assert.Equal(Run(1), Run(1));
        Assert.NotEqual(Run(1), Run(2));
    }

    [Fact]
    public void RotationByZeroAndPadThenCropAreIdentity()
    {
        var random = new Random(15);
        var x = Enumerable.Range(0, 3 * 20 * 20).Select(_ => (float)random.NextDouble()).ToArray();
        var chain = new TransformChain();
        chain.Draw([new RandomRotateTransform([0.0]), new PadTransform(7), new CropOrPadTransform(20, 20)], random, 20, 20, 20, 20);
        var y = new float[x.Length];
        chain.Forward(x, y);
        for (int i = 0; i < x.Length; i++)
            Assert.Equal(x[i], y[i], 5);
    }

    private static double Correlation(float[] image, int channel, int shift, int size)
    {
        var a = new List<double>();
        var b = new List<double>();
        for (int y = 0; y < size; y++)
            for (int x = 0; x + shift < size; x++)
            {
                a.Add(image[channel * size * size + y * size + x]);
                b.Add(image[channel * size * size + y * size + x + shift]);
            }
        double ma = a.Average(), mb = b.Average();
        double cov = a.Zip(b, (p, q) => (p - ma) * (q - mb)).Sum();
        double va = a.Sum(p => (p - ma) * (p - ma)), vb = b.Sum(q => (q - mb) * (q - mb));
        return cov / Math.Sqrt(va * vb);
    }
}
