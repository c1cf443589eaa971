using Microsoft.ML.ActivationAtlas.Inversion.Network;
using Microsoft.ML.ActivationAtlas.Inversion.Parameterization;
using Microsoft.ML.ActivationAtlas.Inversion.Transforms;

namespace Microsoft.ML.ActivationAtlas.Tests.Inversion;

/// <summary>
/// Dot-product tests &lt;A x, y&gt; = &lt;x, A^T y&gt; for every image-side linear map of feature inversion, with random x and y.
/// A wrong transpose (a missed tap, a swapped index, a wrong scale) breaks the equality far beyond float rounding.
/// </summary>
public sealed class AdjointTests
{
    private static float[] RandomVector(int n, Random random)
    {
        var v = new float[n];
        for (int i = 0; i < n; i++)
            v[i] = (float)(random.NextDouble() * 2 - 1);
        return v;
    }

    private static double Dot(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        double s = 0;
        for (int i = 0; i < a.Length; i++)
            s += (double)a[i] * b[i];
        return s;
    }

    // The chains carry a constant (the pad value); the adjoint belongs to the linear part, so compare with A x - A 0.
    private static void AssertChainAdjoint(TransformChain chain, int inPixels, int outPixels, Random random, string what)
    {
        float[] x = RandomVector(3 * inPixels, random), y = RandomVector(3 * outPixels, random);
        var ax = new float[y.Length];
        var a0 = new float[y.Length];
        chain.Forward(x, ax);
        chain.Forward(new float[x.Length], a0);
        for (int i = 0; i < ax.Length; i++)
            ax[i] -= a0[i];
        var aty = new float[x.Length];
        chain.Adjoint(y, aty);
        AssertAdjoint(Dot(ax, y), Dot(x, aty), what);
    }

    private static void AssertAdjoint(double ax_y, double x_aty, string what)
    {
        double scale = Math.Max(Math.Abs(ax_y), Math.Abs(x_aty));
        Assert.True(scale > 1e-6, $"{what}: degenerate test (both sides ~0)");
        Assert.True(Math.Abs(ax_y - x_aty) <= 1e-4 * scale, $"{what}: <Ax,y>={ax_y} but <x,A^T y>={x_aty}");
    }

    [Theory]
    [InlineData(8, 8)]
    [InlineData(7, 9)]
    [InlineData(16, 11)]
    [InlineData(80, 80)]
    public void RealInverseFftAdjointMatchesForward(int h, int w)
    {
        var random = new Random(h * 100 + w);
        var fft = new RealFourier2D(h, w);
        int n = fft.SpectrumSize;
        float[] re = RandomVector(n, random), im = RandomVector(n, random), y = RandomVector(h * w, random);
        var image = new float[h * w];
        var scratch = new float[fft.ScratchSize];
        fft.Inverse(re, im, image, scratch);
        var gre = new float[n];
        var gim = new float[n];
        fft.InverseAdjoint(y, gre, gim, scratch);
        AssertAdjoint(Dot(image, y), Dot(re, gre) + Dot(im, gim), $"irfft2d {h}x{w}");
    }

    [Theory]
    [InlineData(80, 80)]
    [InlineData(7, 9)]
    [InlineData(33, 20)]
    [InlineData(3, 2)]
    [InlineData(64, 1)]
    public void RealInverseFftInvertsTheForwardTransform(int h, int w)
    {
        // A real CIFAR-10 image's channels through rfft2 (direct sums in double) and back: the image again.
        var image = CifarImages.Load(CifarImages.Paths(1).Take(1).ToList(), Math.Max(h, w));
        int s = Math.Max(h, w);
        var fft = new RealFourier2D(h, w);
        var re = new float[fft.SpectrumSize];
        var im = new float[fft.SpectrumSize];
        var back = new float[h * w];
        var scratch = new float[fft.ScratchSize];
        for (int c = 0; c < 3; c++)
        {
            var plane = new float[h * w];
            for (int y = 0; y < h; y++)
                for (int x = 0; x < w; x++)
                    plane[y * w + x] = image[c * s * s + y * s + x];
            fft.Forward(plane, re, im);
            fft.Inverse(re, im, back, scratch);
            for (int i = 0; i < plane.Length; i++)
                Assert.True(Math.Abs(plane[i] - back[i]) < 1e-5, $"{h}x{w} channel {c} pixel {i}: {back[i]} after the round trip of {plane[i]}");
        }
    }

    [Fact]
    public void RealInverseFftMatchesDirectHermitianSum()
    {
        // irfft2d of a half spectrum equals the real part of the full inverse DFT of its Hermitian extension;
        // check a single coefficient at (ky, kx) = (1, 2) on an 8x8 image: x = 2/(hw) * Re(X e^{2 pi i (y/8 + 2x/8)}).
        var fft = new RealFourier2D(8, 8);
        var re = new float[fft.SpectrumSize];
        var im = new float[fft.SpectrumSize];
        re[1 * fft.SpectrumWidth + 2] = 0.7f;
        im[1 * fft.SpectrumWidth + 2] = -0.3f;
        var image = new float[64];
        fft.Inverse(re, im, image, new float[fft.ScratchSize]);
        for (int y = 0; y < 8; y++)
            for (int x = 0; x < 8; x++)
            {
                double t = 2 * Math.PI * (y / 8.0 + 2 * x / 8.0);
                double expected = 2.0 / 64 * (0.7 * Math.Cos(t) + 0.3 * Math.Sin(t));
                Assert.True(Math.Abs(expected - image[y * 8 + x]) < 1e-6, $"pixel ({y}, {x}): {image[y * 8 + x]} vs {expected}");
            }
    }

    [Theory]
    [InlineData(ImageBasis.Fourier, true)]
    [InlineData(ImageBasis.Fourier, false)]
    [InlineData(ImageBasis.Pixel, true)]
    public void LinearBasisAdjointMatchesForward(ImageBasis basis, bool decorrelate)
    {
        var random = new Random(3);
        var p = new ImageParameterization(12, 10, basis, decorrelate);
        var basisMap = p.Basis;
        float[] x = RandomVector(basisMap.ParameterCount, random), y = RandomVector(3 * 120, random);
        var image = new float[3 * 120];
        var scratch = new float[Math.Max(1, basisMap.ScratchSize)];
        basisMap.Forward(x, image, scratch);
        var g = new float[basisMap.ParameterCount];
        basisMap.Adjoint(x, y, g, scratch);
        AssertAdjoint(Dot(image, y), Dot(x, g), $"{basis} basis");
    }

    [Fact]
    public void ColorDecorrelationAdjointMatchesForward()
    {
        var random = new Random(4);
        float[] x = RandomVector(3 * 50, random), y = RandomVector(3 * 50, random);
        var ax = new float[150];
        var aty = new float[150];
        ColorDecorrelation.Forward(x, ax, 50);
        ColorDecorrelation.Adjoint(y, aty, 50);
        AssertAdjoint(Dot(ax, y), Dot(x, aty), "colour matrix");
    }

    [Fact]
    public void SigmoidAdjointIsTheJacobianTranspose()
    {
        // The sigmoid's Jacobian is diagonal: compare the adjoint with central finite differences.
        var random = new Random(5);
        float[] x = RandomVector(64, random), y = RandomVector(64, random), fx = new float[64], g = new float[64];
        Sigmoid.Forward(x, fx);
        Sigmoid.Adjoint(fx, y, g);
        for (int i = 0; i < 64; i++)
        {
            double h = 1e-3, d = (1 / (1 + Math.Exp(-(x[i] + h))) - 1 / (1 + Math.Exp(-(x[i] - h)))) / (2 * h);
            Assert.Equal(d * y[i], g[i], 4);
        }
    }

    public static TheoryData<string> TransformNames() => new() { "pad", "jitter", "scale", "scale-up", "rotate", "crop", "pad-to", "resize" };

    [Theory]
    [MemberData(nameof(TransformNames))]
    public void EveryTransformAdjointMatchesForward(string name)
    {
        ImageTransform t = name switch
        {
            "pad" => new PadTransform(5, 0.5f),
            "jitter" => new JitterTransform(6),
            "scale" => new RandomScaleTransform([0.93]),
            "scale-up" => new RandomScaleTransform([1.1]),
            "rotate" => new RandomRotateTransform([17.0]),
            "crop" => new CropOrPadTransform(21, 19),
            "pad-to" => new CropOrPadTransform(37, 41),
            "resize" => new ResizeTransform(57, 61),
            _ => throw new ArgumentException(name),
        };
        var random = new Random(6);
        var map = new SampledMap();
        t.Draw(new Random(1), 29, 31, map);
        Assert.Equal(29, map.InHeight);
        float[] x = RandomVector(3 * map.InPixels, random), y = RandomVector(3 * map.OutPixels, random);
        // The affine maps carry a constant (the pad value); the adjoint belongs to the linear part, so take A x - A 0.
        var ax = new float[y.Length];
        var a0 = new float[y.Length];
        map.Forward(x, ax, 3);
        map.Forward(new float[x.Length], a0, 3);
        for (int i = 0; i < ax.Length; i++)
            ax[i] -= a0[i];
        var aty = new float[x.Length];
        map.Adjoint(y, aty, 3);
        AssertAdjoint(Dot(ax, y), Dot(x, aty), name);
    }

    /// <summary>A user's transform: a mirror image shifted by a random sub-pixel amount, with a border outside.</summary>
    private sealed class ShiftedMirror : SamplingTransform
    {
        public ShiftedMirror() : base(fill: 0.25f)
        {
        }

        protected override (int Height, int Width) Sample(Random random, int height, int width, SamplePositions positions)
        {
            float dy = (float)random.NextDouble() * 2 - 1, dx = (float)random.NextDouble() * 2 - 1;
            var p = positions.Resize(height, width);
            for (int y = 0; y < height; y++)
                for (int x = 0; x < width; x++)
                {
                    p[2 * (y * width + x)] = y + dy;
                    p[2 * (y * width + x) + 1] = width - 1 - x + dx;
                }
            return (height, width);
        }
    }

    private sealed class Mirror : SamplingTransform
    {
        protected override (int Height, int Width) Sample(Random random, int height, int width, SamplePositions positions)
        {
            var p = positions.Resize(height + 2, width);
            for (int y = 0; y < height + 2; y++)
                for (int x = 0; x < width; x++)
                    (p[2 * (y * width + x)], p[2 * (y * width + x) + 1]) = (y - 1, width - 1 - x);
            return (height + 2, width);
        }
    }

    [Fact]
    public void AUsersSamplingTransformGetsTheExactAdjointAndJoinsTheChain()
    {
        // Forward: the mirror reads the input mirrored, and the rows it adds outside the input read the fill.
        var map = new SampledMap();
        new Mirror().Draw(new Random(1), 5, 7, map);
        Assert.Equal((7, 7), (map.OutHeight, map.OutWidth));
        var input = Enumerable.Range(0, 35).Select(i => (float)i).ToArray();
        var output = new float[49];
        map.Forward(input, output, 1);
        Assert.Equal(0.5f, output[3]);
        Assert.Equal(0.5f, output[48]);
        for (int y = 0; y < 5; y++)
            for (int x = 0; x < 7; x++)
                Assert.Equal(input[y * 7 + (6 - x)], output[(y + 1) * 7 + x]);

        // Adjoint: the dot-product identity, alone and in a chain with the built-in steps, for several draws.
        var random = new Random(3);
        var chain = new TransformChain();
        ImageTransform[] steps = [new PadTransform(4, 0.5f), new ShiftedMirror(), new RandomRotateTransform([9.0]), new CropOrPadTransform(30, 30)];
        for (int draw = 0; draw < 3; draw++)
        {
            chain.Draw(steps, random, 32, 32, 40, 40);
            Assert.Equal(40, chain.OutHeight);
            AssertChainAdjoint(chain, 32 * 32, 40 * 40, random, $"chain with a user's transform, draw {draw}");
        }
    }

    [Fact]
    public void DrawnAtlasChainAdjointMatchesForward()
    {
        // The whole per-icon chain (pad 16, five jitters, random scale, random rotation, jitter 2, crop, resize to the
        // network input) for several random draws.
        var random = new Random(7);
        var chain = new TransformChain();
        for (int draw = 0; draw < 5; draw++)
        {
            chain.Draw(RobustnessTransforms.Atlas(40), random, 40, 40, 56, 56);
            Assert.Equal(56, chain.OutHeight);
            AssertChainAdjoint(chain, 1600, 56 * 56, random, $"atlas chain draw {draw}");
        }
    }

    [Fact]
    public void InputNormalizationAdjointMatchesForward()
    {
        var random = new Random(8);
        var mean = RandomVector(3 * 36, random);
        var norm = new InputNormalization(255f, [2, 1, 0], mean, [0.5f, 2f, 1f]);
        float[] x = RandomVector(2 * 3 * 36, random), y = RandomVector(2 * 3 * 36, random);
        var ax = new float[x.Length];
        var a0 = new float[x.Length];
        norm.Forward(x, ax, 2, 6, 6);
        norm.Forward(new float[x.Length], a0, 2, 6, 6);
        for (int i = 0; i < ax.Length; i++)
            ax[i] -= a0[i];
        var aty = new float[x.Length];
        norm.Adjoint(y, aty, 2, 6, 6);
        AssertAdjoint(Dot(ax, y), Dot(x, aty), "input normalisation");
    }
}
