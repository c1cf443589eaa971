using Microsoft.ML.ActivationAtlas.Extraction;
using Microsoft.ML.ActivationAtlas.Gradients;
using Microsoft.ML.ActivationAtlas.Onnx;
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
        const string layer = "ReLU393_Output_0";
        string input = resnet.Network.Graph.Input[0].Name;
        var rng = new Random(11);
        var x = new float[3 * 224 * 224];
        for (int i = 0; i < x.Length; i++) x[i] = (float)(rng.NextDouble() * 200 - 100);
        var v = new float[x.Length];
        for (int i = 0; i < v.Length; i++) v[i] = (float)(rng.NextDouble() * 2 - 1);
        int bnCount = resnet.Network.Graph.Node.Count(n => n.OpType == "BatchNormalization");
        Assert.True(bnCount > 10);

        float[] Run(bool fold, out int remaining)
        {
            var vjp = GradientGraphBuilder.BuildVjp(resnet.Network, new VjpOptions { Of = layer, FoldBatchNormalization = fold });
            var jvp = GradientGraphBuilder.BuildJvp(resnet.Network, new JvpOptions { At = input, Outputs = [layer], FoldBatchNormalization = fold });
            remaining = vjp.Graph.Node.Count(n => n.OpType == "BatchNormalization") + jvp.Graph.Node.Count(n => n.OpType == "BatchNormalization");
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

        var folded = Run(true, out int foldedLeft);
        var unfolded = Run(false, out int unfoldedLeft);
        output.WriteLine($"BatchNormalization nodes: model {bnCount}, VJP + JVP folded {foldedLeft}, unfolded {unfoldedLeft}");
        Assert.Equal(0, foldedLeft);
        Assert.True(unfoldedLeft >= bnCount, "the unfolded graphs should keep the normalizations (and the VJP's backward ones)");
        double diff = 0, norm = 0;
        for (int i = 0; i < folded.Length; i++)
        {
            diff += (double)(folded[i] - unfolded[i]) * (folded[i] - unfolded[i]);
            norm += (double)unfolded[i] * unfolded[i];
        }
        double relative = Math.Sqrt(diff / norm);
        output.WriteLine($"relative difference of the derivatives, folded against unfolded: {relative:E2}");
        Assert.True(norm > 0);
        Assert.True(relative < 1e-4, $"folded and unfolded derivatives differ by {relative:E2} (relative)");
    }

    private static double Dot(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        double s = 0;
        for (int i = 0; i < a.Length; i++) s += (double)a[i] * b[i];
        return s;
    }
}
