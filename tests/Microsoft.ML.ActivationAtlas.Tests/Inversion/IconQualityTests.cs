using Microsoft.ML.ActivationAtlas.Extraction;
using Microsoft.ML.ActivationAtlas.Inversion;
using Microsoft.ML.ActivationAtlas.Inversion.Network;
using Microsoft.ML.ActivationAtlas.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Microsoft.ML.ActivationAtlas.Tests.Inversion;

/// <summary>Icon quality beyond fidelity on the real ResNet18: plausibility and downstream agreement with member images.</summary>
public sealed class IconQualityTests(ITestOutputHelper output)
{
    private const string Layer = "ReLU393_Output_0";
    private const string Pooled = "Pooling395_Output_0";

    [Fact]
    public void IconsAgreeWithTheirOwnMembersDownstreamAndAreNearRealActivations()
    {
        // Three cells: 6 CIFAR-10 images of each of three classes; targets are their mean layer-4 activations (32 px, 1x1).
        var paths = CifarImages.Paths(6).ToList();
        int[] classes = [1, 5, 8]; // automobile, dog, ship
        var members = classes.Select(k => paths.Skip(6 * k).Take(6).ToList()).ToList();
        using var model = OnnxLayerGradientModel.Load(SharedData.ResNet18ModelPath, Layer, new OnnxLayerModelOptions
        {
            InputSize = 32,
            Normalization = MeanImagePreprocessing.Load(SharedData.ResNet18PreprocessPath, 32),
        });
        var layer = new float[paths.Count * 512];
        model.Forward(CifarImages.Load(paths, 32), paths.Count, layer);
        var targets = classes.Select(k => Enumerable.Range(0, 512).Select(c => Enumerable.Range(6 * k, 6).Average(i => layer[i * 512 + c])).ToArray()).ToList();

        var ml = new MLContext(1);
        using var renderer = ml.Transforms.CreateIconRenderer(new FeatureInversionEstimator.Options
        {
            Model = PretrainedModels.ResNet18,
            Layer = Layer,
            Size = 32,
            Steps = 32,
            Attempts = 1,
            Seed = 6,
            Transforms = IconTransforms.LucidStandard,
            EvaluationInterval = 8,
        });
        var icons = renderer.Render(targets);

        // Plausibility against the 60 real rows: a real row scores exactly 1 against itself; icons score in between.
        var plausibility = IconQualityMetrics.Plausibility(icons, layer);
        Assert.Equal(1.0, IconQualityMetrics.Plausibility(layer.AsSpan(0, 512), layer), 5);
        Assert.All(plausibility, p => Assert.InRange(p, 0.3, 1.0));

        // Downstream: the pooled output of ResNet18 (at its 224 px) for icons and for each cell's members.
        var memberMeans = members.Select(m =>
        {
            var f = renderer.DownstreamFeatures(m, Pooled);
            return Enumerable.Range(0, f[0].Length).Select(c => f.Average(r => r[c])).ToArray();
        }).ToList();
        // A nearest-mean head over the three cells: class k scores the dot product with the unit mean of cell k.
        int d = memberMeans[0].Length;
        var weights = memberMeans.SelectMany(m =>
        {
            float norm = System.Numerics.Tensors.TensorPrimitives.Norm(m);
            return m.Select(v => v / norm);
        }).ToArray();
        var own = renderer.Agreement(icons, Pooled, memberMeans, weights);
        var shifted = renderer.Agreement(icons, Pooled, [memberMeans[1], memberMeans[2], memberMeans[0]]);
        for (int i = 0; i < 3; i++)
            output.WriteLine($"icon {i}: fidelity {icons[i].Fidelity:F3}, plausibility {plausibility[i]:F3}, agreement own {own[i].Cosine:F3} / other {shifted[i].Cosine:F3}, class {own[i].IconTopClass} ({own[i].TopClassMatches})");
        Assert.True(own.Average(a => a.Cosine) > shifted.Average(a => a.Cosine), "icons look more like their own cell's members than another cell's");
        Assert.True(own.Count(a => a.TopClassMatches == true) >= 2, "the head puts most icons in their own cell's class");
        Assert.All(shifted, a => Assert.Null(a.TopClassMatches));

        Assert.Contains("2 member means for 3 icons", Assert.Throws<ArgumentException>(() => renderer.Agreement(icons, Pooled, memberMeans.Take(2).ToList())).Message);
        Assert.Contains("whole number of rows", Assert.Throws<ArgumentException>(() => renderer.Agreement(icons, Pooled, memberMeans, new float[d + 1])).Message);
        Assert.Contains("rows of 512 channels", Assert.Throws<ArgumentException>(() => IconQualityMetrics.Plausibility(icons[0].Activation, new float[700])).Message);
    }
}
