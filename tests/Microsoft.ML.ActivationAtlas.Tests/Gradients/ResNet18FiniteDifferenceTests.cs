using Microsoft.ML.ActivationAtlas.Extraction;
using Microsoft.ML.ActivationAtlas.Gradients;
using Microsoft.ML.ActivationAtlas.Onnx;
using Microsoft.ML.ActivationAtlas.Onnx.Protobuf;
using Microsoft.ML.ActivationAtlas.Tests.Infrastructure;
using Microsoft.ML.Data;
using Xunit.Abstractions;

namespace Microsoft.ML.ActivationAtlas.Tests.Gradients;

/// <summary>
/// The real ImageNet ResNet18 (opset 8: BatchNormalization, residual Add, MaxPool, AveragePool) on a CIFAR-10 image:
/// reverse- and forward-mode directional derivatives against central finite differences with float64 sums.
/// </summary>
public sealed class ResNet18FiniteDifferenceTests(ITestOutputHelper output)
{
    [Theory]
    [InlineData("ReLU393_Output_0")]
    [InlineData("Pooling395_Output_0")]
    public void DirectionalDerivativesMatchFiniteDifferences(string layer)
    {
        var ml = new MLContext(0);
        var resnet = PretrainedModels.ResNet18;
        var image = SharedData.CifarImages(1)[3].Path;
        var data = ml.Data.LoadFromEnumerable(new[] { new CifarClassifierFixture.ImageRow { ImagePath = image } });
        var loaded = ml.Transforms.LoadImages("Image", null, "ImagePath").Append(ml.Transforms.ResizeImages("Image", 224, 224, "Image"))
            .Fit(data).Transform(data);
        var converter = new PixelConverter(resnet.Preprocessing, 224, 224);
        var pixels = new float[converter.Length];
        Assert.Null(converter.FromImage(loaded.GetColumn<MLImage>("Image").First(), pixels));
        using var pre = OnnxSessionFactory.Create(resnet.PreprocessingModel!);
        var x = pre.RunFloat(new Dictionary<string, OnnxFloatTensor> { [pre.InputMetadata.Keys.First()] = new(pixels, [1, 3, 224, 224]) }).Values.First();
        string input = resnet.Network.Graph.Input[0].Name;

        var vjp = GradientGraphBuilder.BuildVjp(resnet.Network, new VjpOptions { Of = layer });
        var jvp = GradientGraphBuilder.BuildJvp(resnet.Network, new JvpOptions { At = input, Outputs = [layer] });
        using var vjpSession = OnnxSessionFactory.Create(vjp);
        using var jvpSession = OnnxSessionFactory.Create(jvp);

        var rng = new Random(7);
        var v = new float[x.Data.Length];
        for (int i = 0; i < v.Length; i++) v[i] = (float)(rng.NextDouble() * 2 - 1);
        var forward = jvpSession.RunFloat(new Dictionary<string, OnnxFloatTensor> { [input] = x, ["jvp_tangent"] = new(v, x.Shape) });
        var value = forward[layer];
        var seed = new float[value.Data.Length];
        for (int i = 0; i < seed.Length; i++) seed[i] = (float)(rng.NextDouble() * 2 - 1);
        var backward = vjpSession.RunFloat(new Dictionary<string, OnnxFloatTensor> { [input] = x, ["vjp_seed"] = new(seed, value.Shape) });

        double reverse = Dot(backward["vjp_gradient"].Data, v);
        double forwardMode = Dot(forward[layer + "_tangent"].Data, seed);
        double Objective(float eps)
        {
            var shifted = new float[x.Data.Length];
            for (int i = 0; i < shifted.Length; i++) shifted[i] = x.Data[i] + eps * v[i];
            var r = jvpSession.RunFloat(new Dictionary<string, OnnxFloatTensor> { [input] = new(shifted, x.Shape), ["jvp_tangent"] = new(v, x.Shape) }, [layer]);
            return Dot(r[layer].Data, seed);
        }
        // Input units are pixel values minus the mean image (range about +-150). Large steps cross many ReLU kinks,
        // small ones drown in float32 rounding of the forward pass: average two steps in between.
        float[] steps = [0.002f, 0.005f];
        double finite = steps.Average(st => (Objective(st) - Objective(-st)) / (2 * st));
        output.WriteLine($"{layer}: reverse {reverse:G8} forward {forwardMode:G8} finite differences {finite:G8}");
        Assert.True(Math.Abs(reverse - forwardMode) <= 1e-4 * Math.Abs(forwardMode), "reverse and forward mode disagree");
        Assert.True(Math.Abs(reverse - finite) <= 5e-2 * Math.Abs(finite), "reverse mode disagrees with finite differences");
    }

    [Fact]
    public void BatchNormalizationsFoldedIntoTheirConvolutionsGiveTheUnfoldedDerivatives()
    {
        var resnet = PretrainedModels.ResNet18;
        int bnCount = resnet.Network.Graph.Node.Count(n => n.OpType == "BatchNormalization");
        Assert.True(bnCount > 10);
        var folded = Derivatives(fold: true, reluMaskAtPool: true, out var foldedGraphs);
        var unfolded = Derivatives(fold: false, reluMaskAtPool: true, out var unfoldedGraphs);
        int foldedLeft = foldedGraphs.Sum(m => m.Graph.Node.Count(n => n.OpType == "BatchNormalization"));
        int unfoldedLeft = unfoldedGraphs.Sum(m => m.Graph.Node.Count(n => n.OpType == "BatchNormalization"));
        output.WriteLine($"BatchNormalization nodes: model {bnCount}, VJP + JVP folded {foldedLeft}, unfolded {unfoldedLeft}");
        Assert.Equal(0, foldedLeft);
        Assert.True(unfoldedLeft >= bnCount, "the unfolded graphs should keep the normalizations (and the VJP's backward ones)");
        double relative = RelativeDifference(folded, unfolded);
        output.WriteLine($"relative difference of the derivatives, folded against unfolded: {relative:E2}");
        Assert.True(relative < 1e-4, $"folded and unfolded derivatives differ by {relative:E2} (relative)");
    }

    [Fact]
    public void TheStemReluMaskedAtItsMaxPoolGivesTheSameDerivatives()
    {
        var atPool = Derivatives(fold: true, reluMaskAtPool: true, out var atPoolGraphs);
        var asWritten = Derivatives(fold: true, reluMaskAtPool: false, out var writtenGraphs);
        // The stem's ReLU output (64 x 112 x 112) is read by a mask only in the rules as written; masked at the pool,
        // the mask reads the pooled tensor.
        string stemRelu = PretrainedModels.ResNet18.Network.Graph.Node.First(n => n.OpType == "MaxPool").Input[0];
        static bool MaskReads(ModelProto m, string tensor) => m.Graph.Node.Any(n => n.OpType == "Greater" && n.Input[0] == tensor);
        Assert.All(writtenGraphs, m => Assert.True(MaskReads(m, stemRelu)));
        Assert.All(atPoolGraphs, m => Assert.False(MaskReads(m, stemRelu)));
        double relative = RelativeDifference(atPool, asWritten);
        output.WriteLine($"relative difference of the derivatives, ReLU mask at the max-pool against at the ReLU: {relative:E2}");
        Assert.True(relative < 1e-6, $"the derivatives differ by {relative:E2} (relative)");
    }

    // The input gradient of a random seed at ResNet18's last block and the tangent of a random direction there, for one
    // image with values across ReLU's kink, as one array; the VJP and JVP graphs built are returned too.
    private static float[] Derivatives(bool fold, bool reluMaskAtPool, out ModelProto[] graphs)
    {
        var resnet = PretrainedModels.ResNet18;
        const string layer = "ReLU393_Output_0";
        string input = resnet.Network.Graph.Input[0].Name;
        var rng = new Random(11);
        var x = new float[3 * 224 * 224];
        for (int i = 0; i < x.Length; i++) x[i] = (float)(rng.NextDouble() * 200 - 100);
        var v = new float[x.Length];
        for (int i = 0; i < v.Length; i++) v[i] = (float)(rng.NextDouble() * 2 - 1);
        var vjp = GradientGraphBuilder.BuildVjp(resnet.Network, new VjpOptions { Of = layer, FoldBatchNormalization = fold, ReluMaskAtMaxPool = reluMaskAtPool });
        var jvp = GradientGraphBuilder.BuildJvp(resnet.Network, new JvpOptions { At = input, Outputs = [layer], FoldBatchNormalization = fold, ReluMaskAtMaxPool = reluMaskAtPool });
        graphs = [vjp, jvp];
        using var vjpSession = OnnxSessionFactory.Create(vjp);
        using var jvpSession = OnnxSessionFactory.Create(jvp);
        var tangent = jvpSession.RunFloat(new Dictionary<string, OnnxFloatTensor>
        {
            [input] = new(x, [1, 3, 224, 224]), ["jvp_tangent"] = new(v, [1, 3, 224, 224]),
        })[layer + "_tangent"];
        var seed = new float[tangent.Data.Length];
        var seedRng = new Random(5);
        for (int i = 0; i < seed.Length; i++) seed[i] = (float)(seedRng.NextDouble() * 2 - 1);
        var gradient = vjpSession.RunFloat(new Dictionary<string, OnnxFloatTensor>
        {
            [input] = new(x, [1, 3, 224, 224]), ["vjp_seed"] = new(seed, tangent.Shape),
        })["vjp_gradient"];
        return [.. gradient.Data, .. tangent.Data];
    }

    private static double RelativeDifference(float[] a, float[] reference)
    {
        double diff = 0, norm = 0;
        for (int i = 0; i < a.Length; i++)
        {
            diff += (double)(a[i] - reference[i]) * (a[i] - reference[i]);
            norm += (double)reference[i] * reference[i];
        }
        Assert.True(norm > 0);
        return Math.Sqrt(diff / norm);
    }

    private static double Dot(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        double s = 0;
        for (int i = 0; i < a.Length; i++) s += (double)a[i] * b[i];
        return s;
    }
}
