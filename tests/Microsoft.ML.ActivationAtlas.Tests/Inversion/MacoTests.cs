using Microsoft.ML.ActivationAtlas.Inversion;
using Microsoft.ML.ActivationAtlas.Inversion.Network;
using Microsoft.ML.ActivationAtlas.Inversion.Parameterization;
using Microsoft.ML.ActivationAtlas.Inversion.Transforms;
using Microsoft.ML.ActivationAtlas.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Microsoft.ML.ActivationAtlas.Tests.Inversion;

/// <summary>MACO: phase-only optimisation with the magnitude fixed to the mean amplitude spectrum of real images.</summary>
public sealed class MacoTests(ITestOutputHelper output)
{
    [Theory]
    [InlineData(12, 12)]
    [InlineData(10, 9)]
    public void ForwardTransformIsInvertedByTheInverseTransform(int height, int width)
    {
        var fft = new RealFourier2D(height, width);
        var random = new Random(3);
        var image = Enumerable.Range(0, height * width).Select(_ => (float)random.NextDouble()).ToArray();
        var re = new float[fft.SpectrumSize];
        var im = new float[fft.SpectrumSize];
        fft.Forward(image, re, im);
        var back = new float[height * width];
        fft.Inverse(re, im, back, new float[fft.ScratchSize]);
        for (int i = 0; i < image.Length; i++)
            Assert.Equal(image[i], back[i], 4);
        // numpy's DC term: the sum of the pixels (of the zero-padded image for an odd width).
        Assert.Equal(image.Sum(), re[0], 3);
    }

    [Fact]
    public void MacoBackwardMatchesFiniteDifferences()
    {
        var magnitude = Enumerable.Range(0, MacoImageParameterization.MagnitudeLength(10, 10)).Select(i => 0.5f + (i % 7)).ToArray();
        var p = new ImageParameterization(10, 10, ImageBasis.Maco, decorrelateColors: true, magnitude);
        var random = new Random(5);
        var theta = new float[p.ParameterCount];
        p.Initialize(theta, random);
        ParameterizationTests.AssertBackwardMatchesFiniteDifferences(p, theta, random, [0, 3, 20, 61, p.ParameterCount / 2, p.ParameterCount - 2]);
    }

    [Fact]
    public void IconsOptimiseThePhaseOnlyAndKeepTheRealImagesMagnitude()
    {
        const int size = 32;
        var paths = CifarImages.Paths(5);
        var magnitude = MacoImageParameterization.MeanAmplitude(CifarImages.Load(paths, size), paths.Count, size);
        using var model = OnnxLayerGradientModel.Load(SharedData.ResNet18ModelPath, "ReLU393_Output_0", new OnnxLayerModelOptions
        {
            InputSize = size,
            Normalization = MeanImagePreprocessing.Load(SharedData.ResNet18PreprocessPath, size),
        });
        // Targets: the layer activations of three other real images.
        var targetPaths = CifarImages.Paths(1, skip: 7).Take(3).ToList();
        var layer = new float[3 * 512];
        model.Forward(CifarImages.Load(targetPaths, size), 3, layer);
        var targets = Enumerable.Range(0, 3).Select(i => layer.AsSpan(i * 512, 512).ToArray()).ToList();
        var options = new IconRenderOptions
        {
            Size = size,
            Steps = 48,
            Attempts = 1,
            Seed = 2,
            Basis = ImageBasis.Maco,
            MacoMagnitude = magnitude,
            Transforms = RobustnessTransforms.LucidStandard(size),
            EvaluationInterval = 8,
        };
        var icons = new IconRenderer(model, options).Render(targets);
        var basis = new MacoImageParameterization(size, size, magnitude);
        int fw = basis.SpectrumWidth;
        var raw = new float[3 * size * size];
        foreach (var icon in icons)
        {
            output.WriteLine($"fidelity {icon.Fidelity:F3} (first evaluation {icon.Evaluations[0].Fidelity:F3})");
            Assert.True(icon.Fidelity > icon.Evaluations[0].Fidelity + 0.1, "the phase alone moves the activation towards the target");
            basis.Forward(icon.Parameters, raw, new float[basis.ScratchSize]);
            var amplitude = basis.Amplitude(raw);
            // The optimised image has the images' mean amplitude at every frequency of the interior columns.
            for (int c = 0; c < 3; c++)
                for (int ky = 0; ky < size; ky++)
                    for (int kx = 1; kx < fw - 1; kx++)
                    {
                        int k = (c * size + ky) * fw + kx;
                        Assert.True(Math.Abs(amplitude[k] - magnitude[k]) <= 1e-3f * magnitude.Max(), $"coefficient ({c}, {ky}, {kx}): {amplitude[k]} vs {magnitude[k]}");
                    }
        }
        // A natural-image spectrum: the lowest non-DC frequencies are far stronger than the highest.
        Assert.True(magnitude[1] > 5 * magnitude[size / 2 * fw + fw - 2]);
    }

    [Fact]
    public void MacoWithoutAMagnitudeOrWithTheWrongSizeIsRefused()
    {
        using var model = new LinearLayerModel(20, 6, 2, 2);
        Assert.Contains("MacoMagnitude", Assert.Throws<ArgumentException>(() => new IconRenderer(model, new IconRenderOptions { Size = 24, Basis = ImageBasis.Maco })).Message);
        var wrong = new float[MacoImageParameterization.MagnitudeLength(20, 20)];
        Assert.Contains("compute it with MeanAmplitude at the icon size", Assert.Throws<ArgumentException>(() =>
            new IconRenderer(model, new IconRenderOptions { Size = 24, Basis = ImageBasis.Maco, MacoMagnitude = wrong })).Message);
    }
}
