using System.Text.Json;
using Microsoft.ML.ActivationAtlas.Gradients;
using Microsoft.ML.ActivationAtlas.Onnx;
using Microsoft.ML.ActivationAtlas.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Microsoft.ML.ActivationAtlas.Tests.Gradients;

/// <summary>
/// Reverse mode (input gradient of a seeded hidden layer) and forward mode (attribution of every logit to the
/// activation vector at a position) against PyTorch float64 references on five real architectures.
/// </summary>
/// <remarks>
/// googlenet and squeezenet have random weights whose max-pool windows and ReLU inputs hold near-ties, so float32
/// evaluation cannot meet their float64 references (PyTorch itself in float32 misses the googlenet input gradient by
/// 0.74 of its largest value): those two are checked with <see cref="VjpOptions.DoublePrecision"/>, the others in
/// float32, all to 1e-3 of the largest reference value.
/// </remarks>
public sealed class FixtureConformanceTests(ITestOutputHelper output)
{
    public static TheoryData<string, bool> Models => new()
    {
        { "lrn_inception_stem", false },
        { "mobilenet_v2", false },
        { "shufflenet_v2_x0_5", false },
        { "squeezenet1_1", true },
        { "googlenet", true },
    };

    [Theory]
    [MemberData(nameof(Models))]
    public void VjpAndAttributionMatchReference(string model, bool doublePrecision)
    {
        var result = GradientFixtureCheck.Run(Path.Combine(SharedData.GradientFixtures, model), doublePrecision: doublePrecision);
        output.WriteLine($"{model} ({(doublePrecision ? "float64" : "float32")}): layer {result.LayerMaxRelativeError:E2} vjp {result.VjpMaxRelativeError:E2} attribution {result.AttributionMaxRelativeError:E2}");
        Assert.Empty(result.UnsupportedOperators);
        Assert.True(result.LayerMaxRelativeError < 1e-4, $"layer value error {result.LayerMaxRelativeError}");
        Assert.True(result.VjpMaxRelativeError < 1e-3, $"input gradient error {result.VjpMaxRelativeError}");
        Assert.True(result.AttributionMaxRelativeError < 1e-3, $"attribution error {result.AttributionMaxRelativeError}");
    }

    /// <summary>In float32, squeezenet's attribution (forward mode) still meets its reference.</summary>
    [Fact]
    public void SqueezenetAttributionMatchesReferenceInFloat32()
    {
        var result = GradientFixtureCheck.Run(Path.Combine(SharedData.GradientFixtures, "squeezenet1_1"));
        Assert.True(result.AttributionMaxRelativeError < 1e-3, $"attribution error {result.AttributionMaxRelativeError}");
    }

    /// <summary>
    /// Forward mode (all classes in one pass) equals reverse mode (one backward pass per class, seeded at the logits)
    /// on every fixture, including the two whose float64 references are out of float32 reach.
    /// </summary>
    [Theory]
    [MemberData(nameof(Models))]
    public void TangentAttributionEqualsPerClassBackwardPasses(string model, bool doublePrecision)
    {
        _ = doublePrecision; // float32 on every model: both modes see the same forward values
        string folder = Path.Combine(SharedData.GradientFixtures, model);
        using var meta = JsonDocument.Parse(File.ReadAllText(Path.Combine(folder, "meta.json")));
        string layer = meta.RootElement.GetProperty("layer_tensor").GetString()!;
        var position = meta.RootElement.GetProperty("position").EnumerateArray().Select(e => e.GetInt32()).ToArray();
        var network = OnnxModelIO.Load(Path.Combine(folder, "model.onnx"));
        var x = OnnxFloatTensor.Load(Path.Combine(folder, "input.pb"));

        var vjp = GradientGraphBuilder.BuildVjp(network, new VjpOptions { Of = "logits", WithRespectTo = layer });
        using var backward = OnnxSessionFactory.Create(vjp);
        var attribution = AttributionGraph.Build(network, layer, "logits");
        using var forward = OnnxSessionFactory.Create(attribution);
        var layerShape = OnnxFloatTensor.Load(Path.Combine(folder, "layer.pb")).Shape;
        int n = (int)layerShape[0], c = (int)layerShape[1], h = (int)layerShape[2], w = (int)layerShape[3];
        var mask = new float[n * h * w];
        for (int i = 0; i < n; i++) mask[(i * h + position[0]) * w + position[1]] = 1f;
        var f = forward.RunFloat(new Dictionary<string, OnnxFloatTensor> { ["input"] = x, [AttributionGraph.MaskName] = new(mask, [n, 1, h, w]) });
        var tangent = f[AttributionGraph.AttributionName];
        var h0 = f[layer].Data;
        int k = (int)tangent.Shape[1];
        double maxRef = 0, maxDiff = 0;
        foreach (int cls in new[] { 0, 1, k / 2, k - 1 })
        {
            var seed = new float[n * k];
            for (int i = 0; i < n; i++) seed[i * k + cls] = 1f;
            var g = backward.RunFloat(new Dictionary<string, OnnxFloatTensor> { ["input"] = x, ["vjp_seed"] = new(seed, [n, k]) })["vjp_gradient"].Data;
            for (int i = 0; i < n; i++)
            {
                double expected = 0;
                for (int ch = 0; ch < c; ch++)
                {
                    int idx = ((i * c + ch) * h + position[0]) * w + position[1];
                    expected += (double)g[idx] * h0[idx];
                }
                maxRef = Math.Max(maxRef, Math.Abs(expected));
                maxDiff = Math.Max(maxDiff, Math.Abs(expected - tangent.Data[i * k + cls]));
            }
        }
        output.WriteLine($"{model}: forward vs reverse mode {maxDiff / maxRef:E2}");
        Assert.True(maxRef > 0);
        Assert.True(maxDiff / maxRef < 1e-3, $"forward and reverse mode differ by {maxDiff / maxRef}");
    }
}
