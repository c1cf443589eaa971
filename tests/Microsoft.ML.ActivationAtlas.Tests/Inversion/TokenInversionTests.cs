using Microsoft.ML.ActivationAtlas.Inversion;
using Microsoft.ML.ActivationAtlas.Inversion.Network;
using Microsoft.ML.ActivationAtlas.Inversion.Objectives;
using Microsoft.ML.ActivationAtlas.Onnx;
using Microsoft.ML.ActivationAtlas.Tests.Infrastructure;
using Microsoft.ML.ActivationAtlas.Tests.Onnx;
using Xunit.Abstractions;

namespace Microsoft.ML.ActivationAtlas.Tests.Inversion;

/// <summary>
/// Feature inversion at a vision transformer's token layer: the shared vit_tiny fixture (64 px, 8 px patches, block 3's
/// output [N, 65, 128]; random weights) and the opset-17 ViT made in this repository (LayerNormalization as one op).
/// </summary>
public sealed class TokenInversionTests(ITestOutputHelper output)
{
    private const int CentreToken = 37; // 1 + 4 * 8 + 4: the centre patch of vit_tiny's 8 x 8 grid

    private static string Folder(string fixture) => fixture == "vit_opset17"
        ? Path.Combine(AppContext.BaseDirectory, "Gradients", "Fixtures", "vit_opset17")
        : Path.Combine(SharedData.GradientFixtures, fixture);

    private static OnnxLayerGradientModel Vit(string fixture = "vit_tiny", TokenLayout? tokens = null)
    {
        string folder = Folder(fixture);
        string layer = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(folder, "meta.json"))).RootElement.GetProperty("layer_tensor").GetString()!;
        return OnnxLayerGradientModel.Load(Path.Combine(folder, "model.onnx"), layer, new OnnxLayerModelOptions { Tokens = tokens });
    }

    // [N, T, C] -> [N, C, T]
    private static float[] ChannelsFirst(OnnxFloatTensor t)
    {
        int n = (int)t.Shape[0], tokens = (int)t.Shape[1], c = (int)t.Shape[2];
        var result = new float[t.Data.Length];
        for (int i = 0; i < n; i++)
            for (int k = 0; k < tokens; k++)
                for (int ch = 0; ch < c; ch++)
                    result[(i * c + ch) * tokens + k] = t.Data[(i * tokens + k) * c + ch];
        return result;
    }

    [Theory]
    [InlineData("vit_tiny", 128, 8, 65)]
    [InlineData("vit_opset17", 32, 4, 17)]
    public void TokenLayerAndItsInputGradientMatchTheFloat64References(string fixture, int channels, int side, int tokens)
    {
        using var model = Vit(fixture);
        Assert.Equal((channels, side, side), (model.LayerChannels, model.LayerHeight, model.LayerWidth));
        Assert.Equal(TokenLayout.Default, model.Tokens);
        string folder = Folder(fixture);
        var input = OnnxFloatTensor.Load(Path.Combine(folder, "input.pb"));
        int batch = (int)input.Shape[0], layerSize = channels * tokens;
        var layer = new float[batch * layerSize];
        model.Forward(input.Data, batch, layer);
        double forward = FixtureData.RelativeError(layer, ChannelsFirst(OnnxFloatTensor.Load(Path.Combine(folder, "layer.pb"))));
        var seed = ChannelsFirst(OnnxFloatTensor.Load(Path.Combine(folder, "layer_cotangent.pb")));
        var gradient = new float[input.Data.Length];
        model.Backward(input.Data, batch, seed, new float[batch * layerSize], gradient);
        double reverse = FixtureData.RelativeError(gradient, OnnxFloatTensor.Load(Path.Combine(folder, "input_vjp.pb")).Data);
        output.WriteLine($"{fixture}: layer {forward:E2}, input VJP {reverse:E2} (relative to the largest reference value)");
        Assert.True(forward < 1e-3, $"token layer differs from the reference by {forward}");
        Assert.True(reverse < 1e-3, $"input gradient differs from the float64 reference by {reverse}");
    }

    [Theory]
    [InlineData(CentreToken)]
    [InlineData(IconRenderOptions.ClassToken)]
    public void TokenObjectiveGradientMatchesFiniteDifferences(int token)
    {
        using var model = Vit();
        int batch = 2, n = 3 * 64 * 64, c = model.LayerChannels, tokens = 65, layerSize = c * tokens;
        var images = CifarImages.Load(CifarImages.Paths(1).Take(batch).ToList(), 64);
        var layer = new float[batch * layerSize];
        model.Forward(images, batch, layer);
        var objective = new ActivationObjective(c);
        // Targets: the other image's activation at the token, so the cosine is moderate and the non-linear branch is taken.
        var acts = CifarImages.At(layer, batch, c, 1, tokens, 0, token);
        var targets = new float[batch * c];
        for (int i = 0; i < batch; i++)
            objective.PrepareTarget(acts.AsSpan((1 - i) * c, c), targets.AsSpan(i * c, c));
        var scratch = new float[2 * c];
        double Objective(float[] x)
        {
            var l = new float[batch * layerSize];
            model.Forward(x, batch, l);
            var a = CifarImages.At(l, batch, c, 1, tokens, 0, token);
            double sum = 0;
            for (int i = 0; i < batch; i++)
                sum += objective.Evaluate(a.AsSpan(i * c, c), targets.AsSpan(i * c, c), Span<float>.Empty, scratch);
            return sum;
        }

        // In-graph seed: the gradient of the loss, minus the objective's.
        var gradient = new float[batch * n];
        model.BackwardObjective(objective, token, images, batch, targets, new float[batch * layerSize], gradient);
        var rng = new Random(5);
        var v = new float[batch * n];
        for (int i = 0; i < v.Length; i++)
            v[i] = (float)(rng.NextDouble() * 2 - 1);
        const float h = 1e-2f;
        var plus = images.Select((x, i) => x + h * v[i]).ToArray();
        var minus = images.Select((x, i) => x - h * v[i]).ToArray();
        double finite = (Objective(plus) - Objective(minus)) / (2 * h);
        double analytic = -System.Numerics.Tensors.TensorPrimitives.Dot<float>(gradient, v);
        double error = Math.Abs(analytic - finite) / Math.Max(Math.Abs(finite), 1e-6);
        output.WriteLine($"token {token}: directional derivative {analytic:G6} (graph) vs {finite:G6} (finite differences), relative error {error:E2}");
        Assert.True(Math.Abs(finite) > 1e-3, "the objective does not change along the probe direction");
        Assert.True(error < 2e-2, $"token objective gradient {analytic} vs finite differences {finite}");

        // The C# seed at the same token through the plain VJP gives the same gradient.
        var seed = new float[batch * layerSize];
        var grad = new float[c];
        for (int i = 0; i < batch; i++)
        {
            objective.Evaluate(acts.AsSpan(i * c, c), targets.AsSpan(i * c, c), grad, scratch);
            for (int ch = 0; ch < c; ch++)
                seed[i * layerSize + ch * tokens + token] = -grad[ch];
        }
        var expected = new float[batch * n];
        model.Backward(images, batch, seed, new float[batch * layerSize], expected);
        double seedError = FixtureData.RelativeError(gradient, expected);
        Assert.True(seedError < 1e-3, $"in-graph seed gradient differs from the C# seed gradient by {seedError}");
    }

    // Real activations of CIFAR-10 images at the objective token.
    private static List<float[]> Activations(OnnxLayerGradientModel model, int token, int count, int skip)
    {
        int c = model.LayerChannels, tokens = 65;
        var images = CifarImages.Load(CifarImages.Paths((count + 9) / 10, skip).Take(count).ToList(), 64);
        var layer = new float[count * c * tokens];
        model.Forward(images, count, layer);
        var acts = CifarImages.At(layer, count, c, 1, tokens, 0, token);
        return Enumerable.Range(0, count).Select(i => acts.AsSpan(i * c, c).ToArray()).ToList();
    }

    // The cosine after subtracting the images' mean activation: the random weights give every image a large shared
    // component (an untrained icon's plain fidelity is already about 0.95), which this leaves out.
    private static double Centred(float[] activation, float[] target, float[] mean) =>
        ActivationObjective.Cosine(activation.Select((v, i) => v - mean[i]).ToArray(), target.Select((v, i) => v - mean[i]).ToArray());

    [Theory]
    [InlineData(null)]
    [InlineData(IconRenderOptions.ClassToken)]
    public void IconsAtATokenBeatUntrainedIcons(int? token)
    {
        using var model = Vit();
        int at = token ?? CentreToken;
        var targets = Activations(model, at, 8, skip: 3);
        var others = Activations(model, at, 40, skip: 10);
        var mean = new float[model.LayerChannels];
        foreach (var v in others)
            System.Numerics.Tensors.TensorPrimitives.Add(mean, v, mean);
        System.Numerics.Tensors.TensorPrimitives.Multiply(mean, 1f / others.Count, mean);
        // The renderer's default transforms for a token layer: shifts by whole 8 px patches.
        IconRenderOptions Options(int steps) => new() { Size = 64, Steps = steps, BatchSize = 8, Seed = 1, Token = token };
        var trainedRenderer = new IconRenderer(model, Options(64));
        Assert.Equal(at, trainedRenderer.Token);
        Assert.Equal(token is null ? (4, 4) : (-1, -1), trainedRenderer.Position);
        var untrained = new IconRenderer(model, Options(0)).Render(targets);
        var icons = trainedRenderer.Render(targets);
        double Median(IReadOnlyList<RenderedIcon> rendered, bool centred) => OnnxInversionTests.Median(
            rendered.Select((icon, i) => centred ? Centred(icon.Activation, targets[i], mean) : icon.Fidelity));
        double trained = Median(icons, false), before = Median(untrained, false);
        double trainedCentred = Median(icons, true), beforeCentred = Median(untrained, true);
        output.WriteLine($"token {at}: median fidelity {trained:F3} after 64 steps, {before:F3} untrained; centred {trainedCentred:F3} vs {beforeCentred:F3}");
        Assert.True(trained > before, $"median fidelity {trained} does not beat the untrained icons' {before}");
        Assert.True(trainedCentred > beforeCentred + 0.2, $"median centred fidelity {trainedCentred} does not beat the untrained icons' {beforeCentred}");
        // The reported fidelity is the cosine of the icon's activation at the token with the target.
        Assert.All(icons.Zip(targets), p => Assert.Equal(ActivationObjective.Cosine(p.First.Activation, p.Second), p.First.Fidelity, 6));
    }

    [Fact]
    public void PatchAlignedJitterShiftsByWholePatches()
    {
        using var model = Vit();
        var transforms = Microsoft.ML.ActivationAtlas.Inversion.Transforms.RobustnessTransforms.For(model, 80);
        var jitter = Assert.IsType<Microsoft.ML.ActivationAtlas.Inversion.Transforms.PatchJitterTransform>(Assert.Single(transforms));
        Assert.Equal((10, 1), (jitter.Patch, jitter.MaxPatches));
        // A 16 x 16 ramp shifted by 4 px patches: every output pixel is the input 0 or 4 px away, or the fill.
        var chain = new Microsoft.ML.ActivationAtlas.Inversion.Transforms.TransformChain();
        var image = Enumerable.Range(0, 3 * 256).Select(i => (float)(i % 256)).ToArray();
        var outImage = new float[3 * 256];
        var shifts = new HashSet<int>();
        var random = new Random(2);
        for (int k = 0; k < 40; k++)
        {
            chain.Draw([new Microsoft.ML.ActivationAtlas.Inversion.Transforms.PatchJitterTransform(4)], random, 16, 16, 16, 16);
            chain.Forward(image, outImage);
            // The pixel at (8, 8) reads (8 + dy, 8 + dx).
            float v = outImage[8 * 16 + 8];
            int dy = (int)v / 16 - 8, dx = (int)v % 16 - 8;
            Assert.True(dy % 4 == 0 && dx % 4 == 0 && Math.Abs(dy) <= 4 && Math.Abs(dx) <= 4, $"shift ({dy}, {dx})");
            shifts.Add(dy * 100 + dx);
        }
        Assert.Equal(9, shifts.Count);
    }

    [Fact]
    public void TokenOutOfRangeOrOnASpatialLayerIsAClearError()
    {
        using var model = Vit();
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => new IconRenderer(model, new IconRenderOptions { Token = 65 }));
        Assert.Contains("Token 65", e.Message);
        Assert.Contains("65 tokens", e.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => new IconRenderer(model, new IconRenderOptions { Token = -1 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => new IconRenderer(model, new IconRenderOptions { Position = (8, 0) }));
        using var conv = OnnxLayerGradientModel.Load(new FixtureData("squeezenet1_1").ModelPath, new FixtureData("squeezenet1_1").LayerTensor,
            new OnnxLayerModelOptions { InputSize = 64 });
        Assert.Null(conv.Tokens);
        var s = Assert.Throws<ArgumentException>(() => new IconRenderer(conv, new IconRenderOptions { Token = 0 }));
        Assert.Contains("not a token layer", s.Message);
    }

    [Fact]
    public void ALayoutThatDoesNotFitTheTokensIsAClearError()
    {
        var e = Assert.Throws<ArgumentException>(() => Vit(tokens: new TokenLayout { ClassTokens = 2 }));
        Assert.Contains("not a token layer", e.Message);
        Assert.Contains("/m/encoder/layers/encoder_layer_2/Add_1_out", e.Message);
    }
}
