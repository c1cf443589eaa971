using Microsoft.ML.ActivationAtlas.Extraction;
using Microsoft.ML.ActivationAtlas.Inversion;
using Microsoft.ML.ActivationAtlas.Inversion.Network;
using Microsoft.ML.ActivationAtlas.Inversion.Objectives;
using Microsoft.ML.ActivationAtlas.Inversion.Optimization;
using Microsoft.ML.ActivationAtlas.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Microsoft.ML.ActivationAtlas.Tests.Inversion;

/// <summary>The renderer a build holds: one network for every call, warm starts from parent cells, on the real ResNet18.</summary>
public sealed class FeatureIconRendererTests(ITestOutputHelper output)
{
    private const string Layer = "ReLU393_Output_0";

    private static FeatureInversionEstimator.Options Options(int steps) => new()
    {
        Model = PretrainedModels.ResNet18,
        Layer = Layer,
        Size = 32,
        Steps = steps,
        Attempts = 1,
        Seed = 4,
        BatchSize = 8,
        Transforms = IconTransforms.LucidStandard,
        LearningRateSchedule = LearningRateSchedule.Cosine,
        EvaluationInterval = 4,
    };

    /// <summary>Layer-4 activations (1x1 at 32 px) of the first <paramref name="perClass"/> CIFAR-10 images of every class, class-major.</summary>
    private static float[][] Activations(int perClass)
    {
        using var model = OnnxLayerGradientModel.Load(SharedData.ResNet18ModelPath, Layer, new OnnxLayerModelOptions
        {
            InputSize = 32,
            Normalization = MeanImagePreprocessing.Load(SharedData.ResNet18PreprocessPath, 32),
        });
        var paths = CifarImages.Paths(perClass);
        var layer = new float[paths.Count * 512];
        model.Forward(CifarImages.Load(paths, 32), paths.Count, layer);
        return Enumerable.Range(0, paths.Count).Select(i => layer.AsSpan(i * 512, 512).ToArray()).ToArray();
    }

    private static float[] Mean(IEnumerable<float[]> rows) => Enumerable.Range(0, 512).Select(c => rows.Average(r => r[c])).ToArray();

    [Fact]
    public void ChildrenWarmStartedFromTheirParentsBeatColdStartsOfTheSameSteps()
    {
        var acts = Activations(4);
        // Parents: the mean of a class's 4 images (a coarse cell); children: the means of its two halves (finer cells).
        var parents = Enumerable.Range(0, 4).Select(k => Mean(acts.Skip(4 * k).Take(4))).ToList();
        var children = Enumerable.Range(0, 8).Select(j => Mean(acts.Skip(2 * j).Take(2))).ToList();
        var ml = new MLContext(1);
        var options = Options(48);
        options.WarmStartSteps = 8;
        using var renderer = ml.Transforms.CreateIconRenderer(options);
        Assert.Equal((512, 32), (renderer.LayerChannels, renderer.NetworkInputSize));
        var parentIcons = renderer.Render(parents);
        // The same renderer (network, sessions) serves the next grid.
        var warm = renderer.Render(children, children.Select((_, j) => (float[]?)parentIcons[j / 2].Parameters).ToList());
        using var cold8 = ml.Transforms.CreateIconRenderer(Options(8));
        var cold = cold8.Render(children);
        double warmMedian = OnnxInversionTests.Median(warm.Select(i => i.Fidelity)), coldMedian = OnnxInversionTests.Median(cold.Select(i => i.Fidelity));
        double parentMedian = OnnxInversionTests.Median(parentIcons.Select(i => i.Fidelity));
        output.WriteLine($"parents (48 steps) {parentMedian:F3}; children after 8 steps: warm {warmMedian:F3}, cold {coldMedian:F3}");
        Assert.All(warm, i => Assert.True(i.WarmStarted && i.StepsTaken == 8));
        Assert.True(warmMedian > coldMedian + 0.05, $"warm {warmMedian:F3} vs cold {coldMedian:F3}");
    }

    [Fact]
    public void IconsOfASizeTheLastBlockCannotTakeRunTheNetworkAtTheNextMultipleOf32()
    {
        var options = Options(1);
        options.Size = 80;
        using var renderer = new MLContext(1).Transforms.CreateIconRenderer(options);
        Assert.Equal(96, renderer.NetworkInputSize);
        var icon = renderer.Render([Activations(1)[3]])[0];
        Assert.Equal(3 * 80 * 80, icon.Pixels.Length);
        Assert.Equal(renderer.ParameterCount, icon.Parameters.Length);
    }

    [Fact]
    public void BadDirectionsAndSettingsNameTheirFault()
    {
        var ml = new MLContext(1);
        using var renderer = ml.Transforms.CreateIconRenderer(Options(2));
        var shortDirection = Assert.Throws<ArgumentException>(() => renderer.Render([new float[511]]));
        Assert.Contains("511 values but the layer has 512 channels", shortDirection.Message);
        var nan = new float[512];
        nan[7] = float.NaN;
        nan[8] = 1;
        Assert.Contains("channel 7", Assert.Throws<ArgumentException>(() => renderer.Render([nan])).Message);
        var whitened = Options(2);
        whitened.Whitening = WhiteningKind.SecondMomentInverse;
        Assert.Contains("Whitening", Assert.Throws<ArgumentException>(() => ml.Transforms.CreateIconRenderer(whitened)).Message);
        Assert.Contains("whole number of rows of 512",
            Assert.Throws<ArgumentException>(() => ml.Transforms.CreateIconRenderer(whitened, new float[700])).Message);
        var noSteps = Options(-1);
        Assert.Contains("Steps", Assert.Throws<ArgumentOutOfRangeException>(() => ml.Transforms.CreateIconRenderer(noSteps)).Message);
        renderer.Dispose();
        Assert.Throws<ObjectDisposedException>(() => renderer.Render([Activations(1)[0]]));
    }
}
