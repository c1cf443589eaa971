using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.ML.ActivationAtlas.Building;
using Microsoft.ML.ActivationAtlas.ClassAtlas;
using Microsoft.ML.ActivationAtlas.Extraction;
using Microsoft.ML.ActivationAtlas.Inversion;
using Microsoft.ML.ActivationAtlas.Tests.Cli;
using Xunit.Abstractions;

namespace Microsoft.ML.ActivationAtlas.Tests.Building;

/// <summary>
/// Class atlases and class comparisons drawn with the icons of the atlas they come from: of an inverted atlas (24
/// CIFAR-10 images through ResNet18, <see cref="InvertedAtlasFixture"/>) each cell's mean activation inverted with the
/// atlas's settings by the build's icon step, within a budget, resumable; of an example atlas, example images.
/// </summary>
public sealed class SubsetIconTests(InvertedAtlasFixture fixture, ITestOutputHelper output) : IClassFixture<InvertedAtlasFixture>
{
    private static JsonElement[] Cells(string folder, int grid)
    {
        using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(folder, "atlas.json")));
        return json.RootElement.GetProperty("grids").EnumerateArray().Single(g => g.GetProperty("size").GetInt32() == grid)
            .GetProperty("cells").EnumerateArray().Select(c => c.Clone()).ToArray();
    }

    private static string? Note(string folder)
    {
        using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(folder, "atlas.json")));
        return json.RootElement.GetProperty("icons").TryGetProperty("note", out var note) ? note.GetString() : null;
    }

    /// <summary>The mean activation of some rows of an atlas: the direction of a one-cell grid over them.</summary>
    private static float[] Mean(BuiltAtlas atlas, IEnumerable<int> rows)
    {
        var mean = new float[atlas.ActivationSize];
        int n = 0;
        foreach (int r in rows)
        {
            for (int i = 0; i < mean.Length; i++)
                mean[i] += atlas.Activations[r * atlas.ActivationSize + i];
            n++;
        }
        for (int i = 0; i < mean.Length; i++)
            mean[i] /= n;
        return mean;
    }

    /// <summary>The fidelity of an untrained icon of a direction: the renderer's starting image (one step at a vanishing rate).</summary>
    private static double UntrainedFidelity(float[] direction) =>
        new MLContext(1).Transforms.VisualizeDirection(new FeatureInversionEstimator.Options
        {
            Model = PretrainedModels.ResNet18, Layer = InvertedAtlasFixture.Layer, Steps = 1, LearningRate = 1e-9, Seed = InvertedAtlasFixture.Options().Seed,
        }, direction).Icon.Fidelity;

    private int[] ClassRows(BuiltAtlas atlas, string name) =>
        ClassFilter.SelectRows(atlas.ClassValues, atlas.ClassNames.Count, atlas.ClassIndex(name), ClassFilterKind.Rank, 0);

    /// <summary>
    /// Every cell inverted with the atlas's settings: the coarsest grid cold with the build's steps, the finer grid warm
    /// from its parent with a quarter of them, and the one-cell grid's fidelity to the rows' mean recorded and above an
    /// untrained icon's.
    /// </summary>
    private void AssertInvertedLikeTheAtlas(string folder, float[] wholeMean)
    {
        var coarse = Cells(folder, 1).Single();
        Assert.Equal("inversion", coarse.GetProperty("icon").GetString());
        Assert.Equal(InvertedAtlasFixture.Options().IconSteps, coarse.GetProperty("steps").GetInt32());
        Assert.False(coarse.GetProperty("warmStarted").GetBoolean());
        foreach (var cell in Cells(folder, 2))
        {
            Assert.Equal("inversion", cell.GetProperty("icon").GetString());
            Assert.True(cell.GetProperty("warmStarted").GetBoolean());
            Assert.Equal(InvertedAtlasFixture.Options().IconSteps / 4, cell.GetProperty("steps").GetInt32());
            Assert.InRange(cell.GetProperty("fidelity").GetDouble(), -1, 1);
        }
        double fidelity = coarse.GetProperty("fidelity").GetDouble(), untrained = UntrainedFidelity(wholeMean);
        output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{Path.GetFileName(folder)}: one-cell fidelity {fidelity:F3}, untrained {untrained:F3}"));
        Assert.True(fidelity > untrained + 0.1, $"the inverted icon's fidelity {fidelity:F3} does not beat an untrained icon's {untrained:F3} by 0.1");
        Assert.Null(Note(folder));
        // The icons are the viewer's and the picture's.
        Assert.True(File.Exists(Path.Combine(folder, "atlas.png")));
        Assert.Equal(Cells(folder, 1).Length + Cells(folder, 2).Length,
            JsonNode.Parse(File.ReadAllText(Path.Combine(folder, "atlas.json")))!["icons"]!["inverted"]!.AsArray().Sum(g => g!["cells"]!.GetValue<int>()));
    }

    [Fact]
    public void AClassAtlasOfAnInvertedAtlasInvertsItsOwnCellsWithTheAtlasSettings()
    {
        var built = fixture.Default;
        string outDir = Path.Combine(fixture.Root, "class-ship");
        var stages = new List<AtlasBuildProgress>();
        built.WriteClassAtlas("ship", outDir, gridSizes: [1, 2], progress: new SyncProgress<AtlasBuildProgress>(stages.Add));
        output.WriteLine(stages.Single(s => s.Stage == "inversion" && s.Status == AtlasStageStatus.Done).Note);
        AssertInvertedLikeTheAtlas(outDir, Mean(built, ClassRows(built, "ship")));
        Assert.True(File.Exists(Path.Combine(outDir, "atlas-class.png")));
        // The icon settings came from build.json (the fixture's 16 steps, not the default 128).
        Assert.Contains("\"IconSettings\":{\"Steps\":16", File.ReadAllText(Path.Combine(built.Folder, "build.json")));
    }

    [Fact]
    public void AComparisonOfAnInvertedAtlasInvertsItsCellsAndKeepsItsAxes()
    {
        var built = fixture.Default;
        string outDir = Path.Combine(fixture.Root, "compare-ship-frog");
        built.WriteComparison("ship", "frog", outDir, gridSizes: [1, 2]);
        AssertInvertedLikeTheAtlas(outDir, Mean(built, ClassRows(built, "ship").Union(ClassRows(built, "frog"))));
        string html = File.ReadAllText(Path.Combine(outDir, "index.html"));
        Assert.Contains("more ship", html);
        Assert.Contains("more frog", html);
    }

    [Fact]
    public void AnExampleAtlasGivesItsSubsetsExampleIcons()
    {
        var options = InvertedAtlasFixture.Options();
        options.Icons = AtlasIconKind.Examples;
        var built = new MLContext(1).Atlas().Build(fixture.Images, Path.Combine(fixture.Root, "examples"), options);
        string classDir = Path.Combine(fixture.Root, "examples-class"), compareDir = Path.Combine(fixture.Root, "examples-compare");
        var stages = new List<AtlasBuildProgress>();
        built.WriteClassAtlas("cat", classDir, gridSizes: [1, 2], progress: new SyncProgress<AtlasBuildProgress>(stages.Add));
        built.WriteComparison("cat", "frog", compareDir, gridSizes: [1, 2], progress: new SyncProgress<AtlasBuildProgress>(stages.Add));
        Assert.DoesNotContain(stages, s => s.Stage == "inversion");
        foreach (var dir in new[] { classDir, compareDir })
        {
            Assert.All(Cells(dir, 1).Concat(Cells(dir, 2)), c => Assert.Equal("example", c.GetProperty("icon").GetString()));
            Assert.Null(Note(dir));
        }
        Assert.False(Directory.Exists(Path.Combine(built.Folder, "cache", "subsets")));
    }

    [Fact]
    public void ABudgetThatRunsOutLeavesMarkedStandInsAndABadBudgetIsNamed()
    {
        var built = fixture.Default;
        string outDir = Path.Combine(fixture.Root, "class-frog-tiny");
        built.WriteClassAtlas("frog", outDir, gridSizes: [1, 2], seed: 7, icons: new SubsetIconOptions { IconBudget = TimeSpan.FromMilliseconds(1) });
        string note = Note(outDir)!;
        output.WriteLine(note);
        Assert.Contains("budget", note);
        Assert.Contains("stand-in", note);
        Assert.All(Cells(outDir, 2), c => Assert.Equal("example", c.GetProperty("icon").GetString()));
        Assert.Contains("stand-in", File.ReadAllText(Path.Combine(outDir, "index.html")));

        string bad = Path.Combine(fixture.Root, "class-frog-zero");
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => built.WriteClassAtlas("frog", bad, icons: new SubsetIconOptions { IconBudget = TimeSpan.Zero }));
        Assert.Contains("SubsetIconOptions.IconBudget", e.Message);
        Assert.False(Directory.Exists(bad));
        var (code, err) = AtlasTool.Run("compare", "--atlas", built.Folder, "--classes", "frog,cat", "--out", bad, "--icon-budget", "0s");
        Assert.Equal(2, code);
        Assert.Contains("--icon-budget", err);
        Assert.False(Directory.Exists(bad));
    }

    [Fact]
    public void AnInterruptedClassAtlasResumesFromItsStoredIconsAndAReopenedAtlasDrawsTheSame()
    {
        string outDir = Path.Combine(fixture.Root, "class-cat-resumed");
        string subsets = Path.Combine(fixture.Default.Folder, "cache", "subsets");
        var before = Directory.Exists(subsets) ? Directory.GetDirectories(subsets).ToHashSet() : [];
        using var cancel = new CancellationTokenSource();
        // Cancelled once this class atlas's one-cell grid's icon is stored, before the finer grid's.
        var interrupted = new SyncProgress<AtlasBuildProgress>(p =>
        {
            if (p.Stage == "inversion" && Directory.Exists(subsets)
                && Directory.GetDirectories(subsets).Where(d => !before.Contains(d))
                    .Any(d => Directory.Exists(Path.Combine(d, "icons-1")) && Directory.GetFiles(Path.Combine(d, "icons-1"), "*.json").Length > 0))
                cancel.Cancel();
        });
        Assert.ThrowsAny<OperationCanceledException>(() =>
            fixture.Default.WriteClassAtlas("cat", outDir, gridSizes: [1, 2], seed: 3, progress: interrupted, cancellationToken: cancel.Token));
        Assert.False(Directory.Exists(outDir));

        // The atlas opened again from its folder: the same settings, and the stored icon is taken up.
        var reopened = new MLContext(1).Atlas().Open(fixture.Default.Folder);
        var stages = new List<AtlasBuildProgress>();
        reopened.WriteClassAtlas("cat", outDir, gridSizes: [1, 2], seed: 3, progress: new SyncProgress<AtlasBuildProgress>(stages.Add));
        string done = stages.Single(s => s.Stage == "inversion" && s.Status == AtlasStageStatus.Done).Note!;
        output.WriteLine(done);
        Assert.Contains("(1 stored", done);
        Assert.All(Cells(outDir, 1).Concat(Cells(outDir, 2)), c => Assert.Equal("inversion", c.GetProperty("icon").GetString()));
        Assert.All(Cells(outDir, 2), c => Assert.True(c.GetProperty("warmStarted").GetBoolean()));

        // Written again elsewhere, every icon comes from the store and the picture is the same.
        string again = Path.Combine(fixture.Root, "class-cat-again");
        stages.Clear();
        reopened.WriteClassAtlas("cat", again, gridSizes: [1, 2], seed: 3, progress: new SyncProgress<AtlasBuildProgress>(stages.Add));
        Assert.Contains("0 icon-steps", stages.Single(s => s.Stage == "inversion" && s.Status == AtlasStageStatus.Done).Note!);
        Assert.Equal(File.ReadAllBytes(Path.Combine(outDir, "atlas.png")), File.ReadAllBytes(Path.Combine(again, "atlas.png")));
    }

    [Fact]
    public void AnAtlasWithoutItsIconSettingsFallsBackToTheDefaultsAndSaysSo()
    {
        // An atlas folder as written before the icon settings were kept in build.json.
        string old = Path.Combine(fixture.Root, "old-atlas");
        CopyFolder(fixture.Tiny.Folder, old);
        var settings = JsonNode.Parse(File.ReadAllText(Path.Combine(old, "build.json")))!.AsObject();
        Assert.True(settings.Remove("IconSettings"));
        File.WriteAllText(Path.Combine(old, "build.json"), settings.ToJsonString());
        var built = new MLContext(1).Atlas().Open(old);
        string outDir = Path.Combine(fixture.Root, "old-class");
        built.WriteClassAtlas("ship", outDir, gridSizes: [1]);
        string note = Note(outDir)!;
        output.WriteLine(note);
        Assert.Contains("does not record its icon settings", note);
        var cell = Cells(outDir, 1).Single();
        Assert.Equal("inversion", cell.GetProperty("icon").GetString());
        Assert.Equal(AtlasBuildOptions.Defaults.IconSteps, cell.GetProperty("steps").GetInt32());
    }

    [Fact]
    public void TheCommandLineDrawsAClassAtlasWithItsIconBudget()
    {
        string outDir = Path.Combine(fixture.Root, "cli-class");
        Assert.Contains("--icon-budget", new Microsoft.ML.ActivationAtlas.Cli.Commands.ClassCommand().Usage);
        Assert.Contains("--icon-budget", new Microsoft.ML.ActivationAtlas.Cli.Commands.CompareCommand().Usage);
        var (code, err) = AtlasTool.Run("class", "--atlas", fixture.Default.Folder, "--class", "frog", "--grids", "1,2", "--seed", "11", "--icon-budget", "10m", "--out", outDir);
        Assert.True(code == 0, err);
        Assert.Contains("inversion", err);
        Assert.All(Cells(outDir, 1).Concat(Cells(outDir, 2)), c => Assert.Equal("inversion", c.GetProperty("icon").GetString()));
    }

    [Fact]
    public void LinkedClassAtlasesOfInvertedLayersInvertEachLayersCells()
    {
        var options = InvertedAtlasFixture.Options();
        options.GridSizes = [2];
        options.IconSteps = 8;
        options.IconSize = 24;
        string[] layers = ["ReLU347_Output_0", InvertedAtlasFixture.Layer];
        var linked = new MLContext(1).Atlas().BuildLayers(fixture.Images, Path.Combine(fixture.Root, "linked"), layers, options);
        string outDir = Path.Combine(fixture.Root, "linked-class-ship");
        var written = linked.WriteClassAtlases("ship", outDir, gridSizes: [1, 2], icons: new SubsetIconOptions { IconBudget = TimeSpan.FromMinutes(20) });
        Assert.Equal(layers, written.Select(w => w.Layer));
        foreach (var layer in layers)
        {
            string dir = Path.Combine(outDir, "layers", layer);
            var cells = Cells(dir, 1).Concat(Cells(dir, 2)).ToArray();
            Assert.All(cells, c => Assert.Equal("inversion", c.GetProperty("icon").GetString()));
            Assert.Equal(8, Cells(dir, 1).Single().GetProperty("steps").GetInt32());
            Assert.All(Cells(dir, 2), c => Assert.Equal(2, c.GetProperty("steps").GetInt32()));
        }
        Assert.True(File.Exists(Path.Combine(outDir, "index.html")));
    }

    private static void CopyFolder(string from, string to)
    {
        foreach (var file in Directory.EnumerateFiles(from, "*", SearchOption.AllDirectories))
        {
            string target = Path.Combine(to, Path.GetRelativePath(from, file));
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(file, target);
        }
    }
}
