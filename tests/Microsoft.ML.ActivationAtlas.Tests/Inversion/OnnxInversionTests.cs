using Microsoft.ML.ActivationAtlas.Inversion;
using Microsoft.ML.ActivationAtlas.Inversion.Network;
using Microsoft.ML.ActivationAtlas.Inversion.Objectives;
using Microsoft.ML.ActivationAtlas.Tests.Onnx;

namespace Microsoft.ML.ActivationAtlas.Tests.Inversion;

/// <summary>
/// The network side on the googlenet fixture at inception4c, through the gradient graph builder. (The fixture's random
/// weights make inception4c almost independent of the input, so icon fidelity is measured on the real ResNet18.)
/// </summary>
public sealed class OnnxInversionTests
{
    private static OnnxLayerGradientModel GoogLeNet(int size) =>
        OnnxLayerGradientModel.Load(new FixtureData("googlenet").ModelPath, "inception4c",
            new OnnxLayerModelOptions { InputSize = size, Normalization = InputNormalization.ImageNet });

    [Fact]
    public void InGraphObjectiveSeedMatchesTheCSharpObjectiveGradient()
    {
        using var model = GoogLeNet(64);
        Assert.Equal((512, 4, 4), (model.LayerChannels, model.LayerHeight, model.LayerWidth));
        int batch = 2, n = 3 * 64 * 64, c = model.LayerChannels, layerSize = c * 16;
        var images = CifarImages.Load(CifarImages.Paths(1).Take(batch).ToList(), 64);
        var layer = new float[batch * layerSize];
        model.Forward(images, batch, layer);
        var objective = new ActivationObjective(c);
        // Targets: the other image's activation, so the cosine is moderate and the non-linear branch is taken.
        var acts = CifarImages.At(layer, batch, c, 4, 4, 2, 2);
        var targets = new float[batch * c];
        for (int i = 0; i < batch; i++)
            objective.PrepareTarget(acts.AsSpan((1 - i) * c, c), targets.AsSpan(i * c, c));
        var seed = new float[batch * layerSize];
        var grad = new float[c];
        var scratch = new float[2 * c];
        for (int i = 0; i < batch; i++)
        {
            objective.Evaluate(acts.AsSpan(i * c, c), targets.AsSpan(i * c, c), grad, scratch);
            for (int ch = 0; ch < c; ch++)
                seed[i * layerSize + ch * 16 + 2 * 4 + 2] = -grad[ch];
        }
        var expected = new float[batch * n];
        model.Backward(images, batch, seed, new float[batch * layerSize], expected);
        var actual = new float[batch * n];
        var layer2 = new float[batch * layerSize];
        model.BackwardObjective(objective, 2 * 4 + 2, images, batch, targets, layer2, actual);
        Assert.True(FixtureData.RelativeError(layer2, layer) < 1e-4);
        double err = FixtureData.RelativeError(actual, expected);
        Assert.True(err < 1e-3, $"in-graph seed gradient differs from the C# seed gradient by {err}");
    }

    internal static double Median(IEnumerable<double> values)
    {
        var v = values.OrderBy(x => x).ToArray();
        return v.Length % 2 == 1 ? v[v.Length / 2] : (v[v.Length / 2 - 1] + v[v.Length / 2]) / 2;
    }
}
