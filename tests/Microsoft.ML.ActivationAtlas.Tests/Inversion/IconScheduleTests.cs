using Microsoft.ML.ActivationAtlas.Inversion;
using Microsoft.ML.ActivationAtlas.Inversion.Optimization;
using Microsoft.ML.ActivationAtlas.Inversion.Transforms;

namespace Microsoft.ML.ActivationAtlas.Tests.Inversion;

/// <summary>Fewer steps for the same icon: best clean snapshot, early stopping, learning-rate schedule, warm starts.</summary>
public sealed class IconScheduleTests
{
    private static IconRenderOptions Options(int steps) => new()
    {
        Size = 24,
        Steps = steps,
        Attempts = 1,
        BatchSize = 4,
        Seed = 1,
        // A dense layer is not shift-invariant: test the optimiser itself (see IconRendererTests).
        Transforms = RobustnessTransforms.None,
    };

    private static List<float[]> Directions(int count, int channels, int seed)
    {
        var r = new Random(seed);
        return Enumerable.Range(0, count).Select(_ => Enumerable.Range(0, channels).Select(_ => (float)r.NextDouble()).ToArray()).ToList();
    }

    [Fact]
    public void KeptIconIsTheBestCleanEvaluationAndItsParametersReproduceIt()
    {
        using var model = new LinearLayerModel(20, 6, 2, 2);
        var options = Options(30);
        options.EvaluationInterval = 5;
        options.Attempts = 2;
        var renderer = new IconRenderer(model, options);
        var icons = renderer.Render(Directions(3, 6, 3));
        foreach (var icon in icons)
        {
            // Evaluated at 5, 10, ..., 30 in each attempt; the kept one has the largest clean objective.
            Assert.Equal(12, icon.Evaluations.Count);
            Assert.Equal([5, 10, 15, 20, 25, 30, 5, 10, 15, 20, 25, 30], icon.Evaluations.Select(e => e.Step));
            var best = icon.Evaluations.MaxBy(e => e.Objective);
            Assert.Equal(best.Objective, icon.Objective);
            Assert.Equal(best.Fidelity, icon.Fidelity);
            Assert.Equal((best.Attempt, best.Step), (icon.Attempt, icon.BestStep));
            Assert.Equal(60, icon.StepsTaken);
            Assert.Equal(renderer.ParameterCount, icon.Parameters.Length);
            // The pixels are the parameterisation of the kept parameters.
            var p = new Microsoft.ML.ActivationAtlas.Inversion.Parameterization.ImageParameterization(24, 24);
            var image = new float[p.ImageSize];
            p.Forward(icon.Parameters, image, p.CreateWorkspace());
            Assert.Equal(icon.Pixels, image);
        }
    }

    [Fact]
    public void EarlyStoppingEndsIconsThatStopImprovingAndKeepsTheirFidelity()
    {
        using var model = new LinearLayerModel(20, 6, 2, 2);
        var directions = Directions(5, 6, 4);
        var full = new IconRenderer(model, Options(300)).Render(directions);
        var options = Options(300);
        options.EvaluationInterval = 10;
        options.EarlyStoppingPatience = 2;
        options.EarlyStoppingTolerance = 0.02;
        var early = new IconRenderer(model, options).Render(directions);
        Assert.All(early, i => Assert.True(i.StoppedEarly, $"stopped after {i.StepsTaken} steps"));
        Assert.True(early.Sum(i => i.StepsTaken) < 0.8 * full.Sum(i => i.StepsTaken), $"{early.Sum(i => i.StepsTaken)} icon-steps");
        for (int i = 0; i < directions.Count; i++)
        {
            Assert.True(early[i].Fidelity > full[i].Fidelity - 0.02, $"icon {i}: {early[i].Fidelity:F3} vs {full[i].Fidelity:F3} with all steps");
            // Stopped at the first evaluation that made it `patience` evaluations without progress.
            var e = early[i].Evaluations;
            Assert.Equal(early[i].StepsTaken, e[^1].Step);
        }
    }

    [Fact]
    public void IconsFlowThroughTheBatchWithoutChangingThem()
    {
        // With early stopping icons leave the batch at different steps and the next ones take their slots: the result
        // still does not depend on the batch size.
        using var model = new LinearLayerModel(20, 6, 2, 2);
        var directions = Directions(7, 6, 5);
        var options = Options(60);
        options.Attempts = 2;
        options.EvaluationInterval = 4;
        options.EarlyStoppingPatience = 1;
        options.LearningRateSchedule = LearningRateSchedule.Cosine;
        var a = new IconRenderer(model, options).Render(directions);
        options.BatchSize = 3;
        var b = new IconRenderer(model, options).Render(directions);
        Assert.Contains(a, i => i.StepsTaken < 120);
        for (int i = 0; i < directions.Count; i++)
        {
            Assert.Equal(a[i].Pixels, b[i].Pixels);
            Assert.Equal(a[i].StepsTaken, b[i].StepsTaken);
        }
    }

    [Fact]
    public void WarmStartFromAnOptimisedIconNeedsFewSteps()
    {
        using var model = new LinearLayerModel(20, 6, 2, 2);
        var parents = Directions(4, 6, 6);
        // Children: their parent's direction plus a small perturbation (as a finer cell inside a coarser one).
        var noise = new Random(7);
        var children = parents.Select(p => p.Select(v => v + 0.1f * (float)(noise.NextDouble() - 0.5)).ToArray()).ToList();
        var parentIcons = new IconRenderer(model, Options(60)).Render(parents);
        var options = Options(60);
        options.WarmStartSteps = 4;
        options.EvaluationInterval = 2;
        options.Attempts = 2;
        var warm = new IconRenderer(model, options).Render(children, parentIcons.Select(p => (float[]?)p.Parameters).ToList());
        var coldOptions = Options(4);
        coldOptions.EvaluationInterval = 2;
        var cold = new IconRenderer(model, coldOptions).Render(children);
        for (int i = 0; i < children.Count; i++)
        {
            Assert.True(warm[i].WarmStarted);
            Assert.False(cold[i].WarmStarted);
            Assert.Equal(4, warm[i].StepsTaken); // one attempt of WarmStartSteps
            Assert.True(warm[i].Fidelity > 0.9 && warm[i].Fidelity > cold[i].Fidelity + 0.1,
                $"child {i}: warm {warm[i].Fidelity:F3}, cold {cold[i].Fidelity:F3} after 4 steps");
        }
    }

    [Fact]
    public void MixedWarmAndColdStartsUseTheirOwnBudgets()
    {
        using var model = new LinearLayerModel(20, 6, 2, 2);
        var directions = Directions(3, 6, 8);
        var renderer = new IconRenderer(model, Options(12));
        var first = renderer.Render(directions);
        var options = Options(12);
        options.EvaluationInterval = 3;
        var icons = new IconRenderer(model, options).Render(directions, [null, first[1].Parameters, null]);
        Assert.Equal([12, 3, 12], icons.Select(i => i.StepsTaken)); // a quarter of Steps by default
        Assert.Equal([false, true, false], icons.Select(i => i.WarmStarted));
    }

    [Fact]
    public void ATimeBudgetStopsStartingIconsAndAZeroBudgetIsRefused()
    {
        using var model = new LinearLayerModel(20, 6, 2, 2);
        var directions = Directions(5, 6, 10);
        var options = Options(10);
        options.BatchSize = 2;
        options.Attempts = 2;
        var renderer = new IconRenderer(model, options);
        var all = renderer.Render(directions);
        var plenty = renderer.RenderWithin(directions, null, TimeSpan.FromHours(1));
        for (int i = 0; i < 5; i++)
            Assert.Equal(all[i].Pixels, plenty[i]!.Pixels);
        // A budget spent at once: only the first batch (icon 0's two attempts) runs; the others are left undone.
        var spent = renderer.RenderWithin(directions, null, TimeSpan.FromTicks(1));
        Assert.Equal(all[0].Pixels, spent[0]!.Pixels);
        Assert.Equal(20, spent[0]!.StepsTaken);
        Assert.All(spent.Skip(1), Assert.Null);
        var zero = Assert.Throws<ArgumentOutOfRangeException>(() => renderer.RenderWithin(directions, null, TimeSpan.Zero));
        Assert.Contains("budget must be positive", zero.Message);
    }

    [Fact]
    public void CosineScheduleDecaysFromTheRateToItsFinalFraction()
    {
        Assert.Equal(0.05, LearningRateSchedules.At(LearningRateSchedule.Cosine, 0.05, 0.1, 0, 100), 12);
        Assert.Equal(0.005, LearningRateSchedules.At(LearningRateSchedule.Cosine, 0.05, 0.1, 99, 100), 12);
        Assert.Equal(0.0275, LearningRateSchedules.At(LearningRateSchedule.Cosine, 0.05, 0.1, 99, 199), 12);
        Assert.Equal(0.05, LearningRateSchedules.At(LearningRateSchedule.Constant, 0.05, 0.1, 99, 100));
        double previous = double.MaxValue;
        for (int t = 0; t < 50; t++)
        {
            double lr = LearningRateSchedules.At(LearningRateSchedule.Cosine, 1, 0.2, t, 50);
            Assert.True(lr < previous);
            previous = lr;
        }
    }

    [Fact]
    public void BadWarmStartsAndSettingsGetClearErrors()
    {
        using var model = new LinearLayerModel(20, 6, 2, 2);
        var renderer = new IconRenderer(model, Options(4));
        var d = Directions(2, 6, 9);
        int n = renderer.ParameterCount;
        Assert.Contains("2 directions", Assert.Throws<ArgumentException>(() => renderer.Render(d, [null])).Message);
        Assert.Contains($"warm start of icon 1 has 5 parameters", Assert.Throws<ArgumentException>(() => renderer.Render(d, [null, new float[5]])).Message);
        var nan = new float[n];
        nan[17] = float.NaN;
        Assert.Contains("parameter 17", Assert.Throws<ArgumentException>(() => renderer.Render(d, [nan, null])).Message);
        Assert.Contains("EvaluationInterval", Assert.Throws<ArgumentOutOfRangeException>(() => new IconRenderer(model, new IconRenderOptions { EvaluationInterval = 0 })).Message);
        Assert.Contains("WarmStartSteps", Assert.Throws<ArgumentOutOfRangeException>(() => new IconRenderer(model, new IconRenderOptions { WarmStartSteps = 0 })).Message);
        Assert.Contains("FinalLearningRateFraction", Assert.Throws<ArgumentOutOfRangeException>(() => new IconRenderer(model, new IconRenderOptions { FinalLearningRateFraction = 0 })).Message);
        Assert.Contains("EarlyStoppingPatience", Assert.Throws<ArgumentOutOfRangeException>(() => new IconRenderer(model, new IconRenderOptions { EarlyStoppingPatience = -1 })).Message);
    }
}
