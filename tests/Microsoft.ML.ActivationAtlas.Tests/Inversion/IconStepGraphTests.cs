using Microsoft.ML.ActivationAtlas.Inversion;
using Microsoft.ML.ActivationAtlas.Inversion.Network;
using Microsoft.ML.ActivationAtlas.Inversion.Objectives;
using Microsoft.ML.ActivationAtlas.Inversion.Parameterization;
using Microsoft.ML.ActivationAtlas.Inversion.Transforms;
using Microsoft.ML.ActivationAtlas.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Microsoft.ML.ActivationAtlas.Tests.Inversion;

/// <summary>
/// The icon step as one graph (image, transforms, network, objective, reverse pass to the spectrum) against the C#
/// image side composed with the network's own gradient, on the real ResNet18 with directions of real CIFAR-10 images.
/// </summary>
public sealed class IconStepGraphTests(ITestOutputHelper output)
{
    private const string Layer = "ReLU393_Output_0";
    private const int InputSize = 64;
    private const int Size = 48;

    internal static OnnxLayerGradientModel Model() => OnnxLayerGradientModel.Load(SharedData.ResNet18ModelPath, Layer, new OnnxLayerModelOptions
    {
        InputSize = InputSize,
        Normalization = MeanImagePreprocessing.Load(SharedData.ResNet18PreprocessPath, InputSize),
    });

    /// <summary>Directions: the layer's centre activation for real CIFAR-10 images.</summary>
    internal static List<float[]> Directions(OnnxLayerGradientModel model, int count)
    {
        int c = model.LayerChannels, h = model.LayerHeight, w = model.LayerWidth;
        var paths = CifarImages.Paths(count / 10 + 1).Take(count).ToList();
        var images = CifarImages.Load(paths, InputSize);
        var layer = new float[paths.Count * c * h * w];
        model.Forward(images, paths.Count, layer);
        var acts = CifarImages.At(layer, paths.Count, c, h, w, h / 2, w / 2);
        return Enumerable.Range(0, paths.Count).Select(i => acts.AsSpan(i * c, c).ToArray()).ToList();
    }

    [Theory]
    [InlineData(false, 0.3f)]
    [InlineData(true, 0.3f)]
    [InlineData(false, 0.01f)]
    public void StepGraphGradientEqualsTheHostPathForTheSameDraws(bool atlasTransforms, float spectrumStd)
    {
        using var model = Model();
        const int n = 6;
        int c = model.LayerChannels, lh = model.LayerHeight, lw = model.LayerWidth, nh = model.InputHeight, nw = model.InputWidth;
        var directions = Directions(model, n);
        var transforms = atlasTransforms ? RobustnessTransforms.Atlas(Size) : RobustnessTransforms.LucidStandard(Size);
        var plan = StepTransformPlan.TryCreate(transforms, Size)!;
        Assert.NotNull(plan);
        var parameterization = new ImageParameterization(Size, Size);
        var basis = (FourierImageParameterization)parameterization.Basis;
        var objective = new ActivationObjective(c, ObjectiveKind.DirectionCosine, 4, 0.1, null);
        var step = new IconStepGraph(basis, true, plan, objective, lh / 2, lw / 2);

        int p = parameterization.ParameterCount, inputSize = 3 * nh * nw;
        var spectrum = new float[n * p];
        var targets = new float[n * c];
        var affine = new float[n * StepTransformPlan.AffineSize];
        var clamp = new float[n * StepTransformPlan.ClampSize];
        var window = new float[n * StepTransformPlan.WindowSize];
        var inputs = new float[n * inputSize];
        var chains = new TransformChain[n];
        var images = new float[n][];
        var workspace = parameterization.CreateWorkspace();
        for (int k = 0; k < n; k++)
        {
            // 0.3: larger than the initial spectrum (0.01), so that the icons have structure and the sigmoid is not linear.
            Gaussian.Fill(spectrum.AsSpan(k * p, p), new Random(100 + k), spectrumStd);
            objective.PrepareTarget(directions[k], targets.AsSpan(k * c, c), $"direction {k}");
            images[k] = new float[parameterization.ImageSize];
            parameterization.Forward(spectrum.AsSpan(k * p, p), images[k], workspace);
            chains[k] = new TransformChain();
            chains[k].Draw(transforms, new Random(200 + k), Size, Size, nh, nw);
            chains[k].Forward(images[k], inputs.AsSpan(k * inputSize, inputSize));
            plan.Draw(new Random(200 + k), affine.AsSpan(k * 12, 12), clamp.AsSpan(k * 2, 2), window.AsSpan(k * 4, 4));
        }

        // Host path: the network's objective gradient w.r.t. its input, then the C# adjoints back to the spectrum.
        var hostLayer = new float[n * c * lh * lw];
        var inputGrad = new float[n * inputSize];
        model.BackwardObjective(objective, lh / 2 * lw + lw / 2, inputs, n, targets, hostLayer, inputGrad);
        var hostGrad = new float[n * p];
        var imageGrad = new float[parameterization.ImageSize];
        for (int k = 0; k < n; k++)
        {
            chains[k].Adjoint(inputGrad.AsSpan(k * inputSize, inputSize), imageGrad);
            parameterization.Backward(spectrum.AsSpan(k * p, p), images[k], imageGrad, hostGrad.AsSpan(k * p, p), workspace);
        }

        var graphLayer = new float[n * c * lh * lw];
        var graphGrad = new float[n * p];
        model.Step(step, n, spectrum, affine, clamp, window, targets, graphLayer, graphGrad);

        double layerError = RelativeError(graphLayer, hostLayer), gradError = RelativeError(graphGrad, hostGrad);
        output.WriteLine($"layer: max |diff| / max |host| = {layerError:E2}; spectrum gradient: {gradError:E2} (max |host| {hostGrad.Max(Math.Abs):E3})");
        int flips = 0;
        double largestFlip = 0;
        for (int i = 0; i < hostGrad.Length; i++)
            if (Math.Sign(hostGrad[i]) != Math.Sign(graphGrad[i]))
            {
                flips++;
                largestFlip = Math.Max(largestFlip, Math.Abs(hostGrad[i]));
            }
        output.WriteLine($"{flips} of {hostGrad.Length} gradient components differ in sign, the largest {largestFlip:E2}");
        Assert.True(hostGrad.Max(Math.Abs) > 0, "the host gradient is not zero (the comparison means something)");
        Assert.True(layerError < 1e-4, $"layer differs by {layerError:E2}");
        Assert.True(gradError < 1e-3, $"spectrum gradient differs by {gradError:E2}");
        // Per icon too: each icon's own transforms are applied to it (a swap of draws between icons would fail here).
        for (int k = 0; k < n; k++)
            Assert.True(RelativeError(graphGrad.AsSpan(k * p, p).ToArray(), hostGrad.AsSpan(k * p, p).ToArray()) < 1e-3, $"icon {k}");
    }

    private static IconRenderOptions RenderOptions(IconStepPath path, int steps, int evaluationInterval) => new()
    {
        Size = Size,
        Steps = steps,
        EvaluationInterval = evaluationInterval,
        BatchSize = 3, // 5 icons through 3 slots: icons start in freed slots, as in an atlas
        Seed = 3,
        Transforms = RobustnessTransforms.LucidStandard(Size),
        StepPath = path,
    };

    /// <summary>
    /// Same seed, same draws: the runs agree within what float rounding allows. Adam's first steps move every spectrum
    /// coefficient by about the learning rate whatever the size of its gradient, and at the initial spectrum about 4 in
    /// 10,000 coefficients have gradients within rounding of zero (below 2e-5 of the largest) whose sign differs between
    /// the two float32 computations (see <see cref="StepGraphGradientEqualsTheHostPathForTheSameDraws"/>'s output): those
    /// step the other way, which at the default learning rate moves pixels by up to 4e-2 after one step (a low
    /// frequency's coefficient). Eight small steps are compared closely here, longer runs at the default rate by what
    /// they achieve.
    /// </summary>
    [Theory]
    [InlineData(8, 0.002, 2e-3)]
    public void IconsRenderedWithTheStepGraphEqualTheHostPathsForTheSameSeed(int steps, double learningRate, double tolerance)
    {
        using var model = Model();
        var directions = Directions(model, 5);
        IconRenderOptions Options(IconStepPath path)
        {
            var o = RenderOptions(path, steps, 1);
            o.LearningRate = learningRate;
            return o;
        }
        var hostRenderer = new IconRenderer(model, Options(IconStepPath.Host));
        var graphRenderer = new IconRenderer(model, Options(IconStepPath.Graph));
        Assert.False(hostRenderer.UsesStepGraph);
        Assert.True(graphRenderer.UsesStepGraph);
        // Auto takes the host path on the CPU.
        Assert.False(new IconRenderer(model, Options(IconStepPath.Auto)).UsesStepGraph);
        var host = hostRenderer.Render(directions);
        var graph = graphRenderer.Render(directions);
        for (int i = 0; i < directions.Count; i++)
        {
            double pixels = host[i].Pixels.Zip(graph[i].Pixels, (a, b) => Math.Abs(a - b)).Max();
            double change = host[i].Evaluations[^1].Objective - host[i].Evaluations[0].Objective;
            output.WriteLine($"icon {i}: fidelity host {host[i].Fidelity:F5} graph {graph[i].Fidelity:F5}; max pixel difference {pixels:E2}; objective change {change:E2}");
            Assert.True(pixels < tolerance, $"icon {i}: pixels differ by up to {pixels:E2}");
            Assert.Equal(host[i].Evaluations.Count, graph[i].Evaluations.Count);
            foreach (var (h, g) in host[i].Evaluations.Zip(graph[i].Evaluations))
            {
                Assert.Equal(h.Step, g.Step);
                Assert.True(Math.Abs(h.Fidelity - g.Fidelity) < 5e-3, $"icon {i} step {h.Step}: fidelity {h.Fidelity} vs {g.Fidelity}");
            }
        }
    }

    [Fact]
    public void LongerRunsWithTheStepGraphOptimiseIconsAsWellAsTheHostPath()
    {
        using var model = Model();
        var directions = Directions(model, 5);
        var host = new IconRenderer(model, RenderOptions(IconStepPath.Host, 32, 8)).Render(directions);
        var graph = new IconRenderer(model, RenderOptions(IconStepPath.Graph, 32, 8)).Render(directions);
        double hostMedian = OnnxInversionTests.Median(host.Select(i => i.Fidelity)), graphMedian = OnnxInversionTests.Median(graph.Select(i => i.Fidelity));
        double initial = OnnxInversionTests.Median(new IconRenderer(model, RenderOptions(IconStepPath.Graph, 0, 8)).Render(directions).Select(i => i.Fidelity));
        output.WriteLine($"median fidelity after 32 steps: host {hostMedian:F3}, graph {graphMedian:F3}; initial {initial:F3}");
        Assert.True(graphMedian > initial + 0.2, $"the graph path optimises: {initial:F3} -> {graphMedian:F3}");
        Assert.True(Math.Abs(graphMedian - hostMedian) < 0.05, $"median fidelity host {hostMedian:F3} vs graph {graphMedian:F3}");
    }

    [Fact]
    public void TheGraphPathIsRefusedWithTheReasonWhereItCannotServe()
    {
        using var model = Model();
        var e = Assert.Throws<NotSupportedException>(() => new IconRenderer(model, new IconRenderOptions
        {
            Size = Size,
            Transforms = [new JitterTransform(4)],
            StepPath = IconStepPath.Graph,
        }));
        Assert.Contains("transform list", e.Message);
        e = Assert.Throws<NotSupportedException>(() => new IconRenderer(model, new IconRenderOptions { Size = Size, Basis = ImageBasis.Pixel, StepPath = IconStepPath.Graph }));
        Assert.Contains("Pixel", e.Message);
    }

    internal static double RelativeError(float[] actual, float[] expected)
    {
        double maxRef = 0, maxDiff = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            maxRef = Math.Max(maxRef, Math.Abs(expected[i]));
            maxDiff = Math.Max(maxDiff, Math.Abs(actual[i] - (double)expected[i]));
        }
        return maxDiff / maxRef;
    }
}
