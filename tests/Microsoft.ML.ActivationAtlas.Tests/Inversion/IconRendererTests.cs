using Microsoft.ML.ActivationAtlas.Inversion;
using Microsoft.ML.ActivationAtlas.Inversion.Objectives;
using Microsoft.ML.ActivationAtlas.Inversion.Transforms;

namespace Microsoft.ML.ActivationAtlas.Tests.Inversion;

/// <summary>The optimisation loop on an exact C# layer model: fidelity rises, runs reproduce, bad input is refused.</summary>
public sealed class IconRendererTests
{
    private static IconRenderOptions SmallOptions(int seed = 1) => new()
    {
        Size = 24,
        Steps = 40,
        Attempts = 2,
        BatchSize = 4,
        Seed = seed,
        Transforms = RobustnessTransforms.LucidStandard(24),
    };

    private static List<float[]> Directions(int count, int channels, int seed)
    {
        var r = new Random(seed);
        return Enumerable.Range(0, count).Select(_ => Enumerable.Range(0, channels).Select(_ => (float)r.NextDouble()).ToArray()).ToList();
    }

    [Fact]
    public void OptimisedIconsPointTheLayerAlongTheirTargets()
    {
        using var model = new LinearLayerModel(size: 20, channels: 6, layerSize: 2, seed: 2);
        var directions = Directions(5, 6, 3);
        // A dense layer is not shift-invariant, so transformation robustness would only blur its optimum: test the
        // optimiser itself here (the real networks below use the atlas transforms).
        var options = SmallOptions();
        options.Transforms = RobustnessTransforms.None;
        var icons = new IconRenderer(model, options).Render(directions);
        Assert.Equal(5, icons.Count);
        // Random positive targets in 6 dimensions: a grey image's activation has cosine ~0 with them on average.
        foreach (var icon in icons)
        {
            Assert.Equal(3 * 24 * 24, icon.Pixels.Length);
            Assert.All(icon.Pixels, v => Assert.InRange(v, 0f, 1f));
            Assert.InRange(icon.Attempt, 0, 1);
        }
        double median = icons.Select(i => i.Fidelity).OrderBy(v => v).ElementAt(2);
        Assert.True(median > 0.9, $"median fidelity {median}");
    }

    /// <summary>A user's objective: a penalty on the activation's squared norm (it only pulls towards zero).</summary>
    private sealed class SquaredNorm : IconObjective
    {
        public override double Evaluate(ReadOnlySpan<float> activation, ReadOnlySpan<float> target, Span<float> gradient)
        {
            double value = 0;
            for (int i = 0; i < activation.Length; i++)
            {
                value += (double)activation[i] * activation[i];
                gradient[i] = 2 * activation[i];
            }
            return value;
        }
    }

    [Fact]
    public void ComposedObjectivesDriveTheRendererAndTheAtlasPartEqualsTheBuiltIn()
    {
        using var model = new LinearLayerModel(size: 20, channels: 6, layerSize: 2, seed: 2);
        var directions = Directions(4, 6, 5);
        var options = SmallOptions();
        options.Transforms = RobustnessTransforms.None;
        options.ObjectiveInGraph = false;
        var builtIn = new IconRenderer(model, options).Render(directions);
        options.CustomObjective = IconObjective.Atlas();
        var asPart = new IconRenderer(model, options).Render(directions);
        for (int i = 0; i < builtIn.Count; i++)
            Assert.Equal(builtIn[i].Pixels, asPart[i].Pixels);

        // The atlas objective minus a small norm penalty: the icons' activations come out smaller than without it,
        // still pointing along their targets.
        options.CustomObjective = IconObjective.Atlas() - 0.02 * new SquaredNorm();
        var penalised = new IconRenderer(model, options).Render(directions);
        static double Norm(float[] activation) => Math.Sqrt(activation.Sum(v => (double)v * v));
        for (int i = 0; i < penalised.Count; i++)
        {
            Assert.True(Norm(penalised[i].Activation) < Norm(builtIn[i].Activation), $"icon {i}: the norm penalty did not shrink the activation ({Norm(penalised[i].Activation)} against {Norm(builtIn[i].Activation)})");
            Assert.True(penalised[i].Fidelity > 0.5, $"icon {i}: fidelity {penalised[i].Fidelity}");
        }
    }

    [Fact]
    public void SameSeedReproducesIconsAndDifferentSeedDoesNot()
    {
        using var model = new LinearLayerModel(20, 6, 2, 2);
        var directions = Directions(3, 6, 4);
        var options = SmallOptions(seed: 9);
        options.Steps = 10;
        var a = new IconRenderer(model, options).Render(directions);
        var b = new IconRenderer(model, options).Render(directions);
        options.Seed = 10;
        var c = new IconRenderer(model, options).Render(directions);
        for (int i = 0; i < 3; i++)
        {
            Assert.Equal(a[i].Pixels, b[i].Pixels);
            Assert.Equal(a[i].Fidelity, b[i].Fidelity);
            Assert.NotEqual(a[i].Pixels, c[i].Pixels);
        }
    }

    [Fact]
    public void BatchSizeDoesNotChangeTheIcons()
    {
        // Every icon has its own random stream, so how icons are grouped into batches does not matter.
        using var model = new LinearLayerModel(20, 6, 2, 2);
        var directions = Directions(5, 6, 5);
        var options = SmallOptions();
        options.Steps = 8;
        var a = new IconRenderer(model, options).Render(directions);
        options.BatchSize = 2;
        var b = new IconRenderer(model, options).Render(directions);
        for (int i = 0; i < 5; i++)
            Assert.Equal(a[i].Pixels, b[i].Pixels);
    }

    [Fact]
    public void BestAttemptIsKeptByCleanObjective()
    {
        using var model = new LinearLayerModel(20, 6, 2, 2);
        var directions = Directions(2, 6, 6);
        var options = SmallOptions();
        options.Steps = 6;
        options.Attempts = 1;
        var one = new IconRenderer(model, options).Render(directions);
        options.Attempts = 3;
        var three = new IconRenderer(model, options).Render(directions);
        for (int i = 0; i < 2; i++)
            Assert.True(three[i].Objective >= one[i].Objective, "more attempts can only improve the kept objective");
    }

    [Fact]
    public void DirectionObjectiveNeedsOneNetworkPassPerStep()
    {
        using var model = new LinearLayerModel(20, 6, 2, 2);
        var options = SmallOptions();
        options.Steps = 5;
        options.Attempts = 1;
        options.BatchSize = 3;
        options.Objective = ObjectiveKind.Direction;
        new IconRenderer(model, options).Render(Directions(3, 6, 7));
        Assert.Equal(5, model.BackwardCalls);
        Assert.Equal(1, model.ForwardCalls); // the clean evaluation
    }

    [Fact]
    public void ProgressIsReportedAndCancellationStops()
    {
        using var model = new LinearLayerModel(20, 6, 2, 2);
        var options = SmallOptions();
        options.Steps = 50;
        var reports = new List<IconRenderProgress>();
        using var cts = new CancellationTokenSource();
        var progress = new SyncProgress(p =>
        {
            reports.Add(p);
            if (p.Step == 3)
                cts.Cancel();
        });
        Assert.ThrowsAny<OperationCanceledException>(() => new IconRenderer(model, options).Render(Directions(2, 6, 8), progress, cts.Token));
        Assert.Equal(3, reports.Count);
        Assert.Equal(50, reports[0].Steps);
    }

    [Fact]
    public void BadDirectionsGetClearErrors()
    {
        using var model = new LinearLayerModel(20, 6, 2, 2);
        var renderer = new IconRenderer(model, SmallOptions());
        var wrongLength = Assert.Throws<ArgumentException>(() => renderer.Render([new float[6] { 1, 1, 1, 1, 1, 1 }, new float[5] { 1, 1, 1, 1, 1 }]));
        Assert.Contains("direction 1 has 5 values but the layer has 6 channels", wrongLength.Message);
        var nan = Assert.Throws<ArgumentException>(() => renderer.Render([new float[6] { 1, 1, float.NaN, 1, 1, 1 }]));
        Assert.Contains("non-finite", nan.Message);
        Assert.Contains("channel 2", nan.Message);
        var zero = Assert.Throws<ArgumentException>(() => renderer.Render([new float[6]]));
        Assert.Contains("zero vector", zero.Message);
    }

    [Fact]
    public void BadOptionsGetClearErrors()
    {
        using var model = new LinearLayerModel(20, 6, 2, 2);
        Assert.Contains("Steps", Assert.Throws<ArgumentOutOfRangeException>(() => new IconRenderer(model, new IconRenderOptions { Steps = -1 })).Message);
        Assert.Contains("Size", Assert.Throws<ArgumentOutOfRangeException>(() => new IconRenderer(model, new IconRenderOptions { Size = 2 })).Message);
        Assert.Contains("outside", Assert.Throws<ArgumentOutOfRangeException>(() => new IconRenderer(model, new IconRenderOptions { Position = (5, 0) })).Message);
    }

    private sealed class SyncProgress(Action<IconRenderProgress> action) : IProgress<IconRenderProgress>
    {
        public void Report(IconRenderProgress value) => action(value);
    }
}
