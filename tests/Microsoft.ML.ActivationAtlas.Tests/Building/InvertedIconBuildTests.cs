using System.Globalization;
using System.Text.Json;
using Microsoft.ML.ActivationAtlas.Building;
using Microsoft.ML.ActivationAtlas.Extraction;
using Microsoft.ML.ActivationAtlas.Inversion;
using Microsoft.ML.ActivationAtlas.Rendering;
using Microsoft.ML.ActivationAtlas.Tests.Cli;
using Microsoft.ML.ActivationAtlas.Tests.Infrastructure;
using Microsoft.ML.ActivationAtlas.Tests.Rendering;
using Microsoft.ML.Data;
using SkiaSharp;
using Xunit.Abstractions;

namespace Microsoft.ML.ActivationAtlas.Tests.Building;

/// <summary>
/// Two atlases of 24 CIFAR-10 images (cats, ships, frogs) through ResNet18 with the default icons (inverted, few
/// steps): one with the default icon budget, one whose budget runs out at once.
/// </summary>
public sealed class InvertedAtlasFixture : IDisposable
{
    public const string Layer = "ReLU393_Output_0";

    public InvertedAtlasFixture()
    {
        Images = CopyImages(Root, "images", 8, "cat", "ship", "frog");
        Default = new MLContext(1).Atlas().Build(Images, Path.Combine(Root, "default"), Options(), new SyncProgress<AtlasBuildProgress>(Stages.Add));
        var tiny = Options();
        tiny.IconBudget = TimeSpan.FromMilliseconds(1);
        Tiny = new MLContext(1).Atlas().Build(Images, Path.Combine(Root, "tiny"), tiny);
    }

    public string Root { get; } = Path.Combine(Path.GetTempPath(), "atlas-inverted-" + Guid.NewGuid().ToString("N"));

    public string Images { get; }

    public BuiltAtlas Default { get; }

    public BuiltAtlas Tiny { get; }

    public List<AtlasBuildProgress> Stages { get; } = [];

    /// <summary>The defaults but for small grids and icons and few steps.</summary>
    public static AtlasBuildOptions Options() => new()
    {
        Model = PretrainedModels.ResNet18,
        Layer = Layer,
        GridSizes = [2, 4],
        IconSize = 32,
        IconSteps = 16,
        Seed = 5,
    };

    /// <summary>A folder of <paramref name="perClass"/> images of each CIFAR-10 class (of <paramref name="classes"/> when given), in class sub-folders.</summary>
    public static string CopyImages(string root, string name, int perClass, params string[] classes)
    {
        string dir = Path.Combine(root, name);
        foreach (var (path, label) in SharedData.CifarImages(perClass).Where(x => classes.Length == 0 || classes.Contains(x.Label)))
        {
            Directory.CreateDirectory(Path.Combine(dir, label));
            File.Copy(path, Path.Combine(dir, label, Path.GetFileName(path)));
        }
        return dir;
    }

    public void Dispose()
    {
        if (Directory.Exists(Root))
            Directory.Delete(Root, true);
    }
}

/// <summary>
/// Feature-inversion icons as the atlas builder's default: coarse grid cold, finer grids warm-started from their
/// parents, one renderer, a time budget with example stand-ins, resuming from stored icons, the quality in
/// <c>atlas.json</c>, <c>atlas.png</c> and the viewer's switch between icons and examples.
/// </summary>
public sealed class InvertedIconBuildTests(InvertedAtlasFixture fixture, ITestOutputHelper output) : IClassFixture<InvertedAtlasFixture>
{
    private static JsonElement[] Cells(string folder, int grid)
    {
        using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(folder, "atlas.json")));
        return json.RootElement.GetProperty("grids").EnumerateArray().Single(g => g.GetProperty("size").GetInt32() == grid)
            .GetProperty("cells").EnumerateArray().Select(c => c.Clone()).ToArray();
    }

    private static JsonElement IconSummary(string folder)
    {
        using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(folder, "atlas.json")));
        return json.RootElement.GetProperty("icons").Clone();
    }

    private static float[] Pixels(byte[] png, int side)
    {
        using var decoded = SKBitmap.Decode(png);
        using var bmp = decoded.Resize(new SKImageInfo(side, side), new SKSamplingOptions(SKFilterMode.Linear));
        var values = new float[side * side * 3];
        for (int y = 0, i = 0; y < side; y++)
            for (int x = 0; x < side; x++)
            {
                var c = bmp.GetPixel(x, y);
                values[i++] = c.Red;
                values[i++] = c.Green;
                values[i++] = c.Blue;
            }
        return values;
    }

    private static double MeanAbsDifference(float[] a, float[] b) => a.Zip(b, (x, y) => Math.Abs(x - y)).Average();

    [Fact]
    public void TheDefaultBuildInvertsTheCoarsestGridColdAndWarmStartsTheFinerCellsFromTheirParents()
    {
        Assert.Equal(AtlasIconKind.Inversion, new AtlasBuildOptions().Icons);
        var built = fixture.Default;
        string folder = built.Folder;
        Assert.Equal(AtlasIconKind.Inversion, built.IconKind);
        Assert.Null(built.IconNote);
        Assert.Contains(fixture.Stages, s => s.Stage == "inversion" && s.Status == AtlasStageStatus.Done);

        var coarse = Cells(folder, 2);
        var fine = Cells(folder, 4);
        Assert.NotEmpty(coarse);
        Assert.All(coarse.Concat(fine), c => Assert.Equal("inversion", c.GetProperty("icon").GetString()));
        Assert.All(coarse, c => Assert.False(c.GetProperty("warmStarted").GetBoolean()));
        Assert.All(fine, c => Assert.True(c.GetProperty("warmStarted").GetBoolean()));
        int coldSteps = coarse.Max(c => c.GetProperty("steps").GetInt32());
        Assert.InRange(coldSteps, 1, 16);
        Assert.All(fine, c => Assert.InRange(c.GetProperty("steps").GetInt32(), 1, coldSteps - 1));
        Assert.All(coarse.Concat(fine), c =>
        {
            Assert.InRange(c.GetProperty("fidelity").GetDouble(), 0.05, 1.0);
            Assert.InRange(c.GetProperty("plausibility").GetDouble(), 0.05, 1.0);
        });
        var summary = IconSummary(folder);
        Assert.Equal("inversion", summary.GetProperty("kind").GetString());

        // A warm-started child starts from its parent's parameters: after a few steps it still looks like its parent,
        // more than like the other coarse cells' icons.
        var icons = built.Icons;
        var parents = built.Atlas.Level(2).Cells.ToDictionary(c => (c.X, c.Y), c => Pixels(icons.Get(2, c.X, c.Y)!, 32));
        if (parents.Count > 1)
            foreach (var child in built.Atlas.Level(4).Cells)
            {
                var pixels = Pixels(icons.Get(4, child.X, child.Y)!, 32);
                double own = MeanAbsDifference(pixels, parents[(child.X / 2, child.Y / 2)]);
                double others = parents.Where(p => p.Key != (child.X / 2, child.Y / 2)).Min(p => MeanAbsDifference(pixels, p.Value));
                Assert.True(own < others, $"child ({child.X}, {child.Y}) differs from its parent by {own:F1}, from another coarse icon by {others:F1}");
            }

        // The stored icons are what the atlas shows, at the inversion's size, and not the example images.
        var examples = AtlasIcons.FromNearestExamples(built.Atlas, row => built.ImagePaths[row], 32);
        foreach (var cell in built.Atlas.Level(2).Cells)
        {
            var stored = File.ReadAllBytes(Path.Combine(folder, "cache", "icons-2", $"{cell.X}_{cell.Y}.png"));
            Assert.Equal(stored, icons.Get(2, cell.X, cell.Y));
            Assert.Equal(examples.Get(2, cell.X, cell.Y), icons.GetExample(2, cell.X, cell.Y));
            using var bmp = SKBitmap.Decode(stored);
            Assert.Equal(new FeatureInversionEstimator.Options().Size, bmp.Width);
            Assert.NotNull(icons.Inversion(2, cell.X, cell.Y));
        }
        // A finished build keeps no optimisation parameters.
        Assert.Empty(Directory.GetFiles(Path.Combine(folder, "cache"), "*.params", SearchOption.AllDirectories));

        // atlas.png draws the inverted icons.
        var png = File.ReadAllBytes(Path.Combine(folder, "atlas.png"));
        var options = new AtlasImageOptions { GridSize = built.ImageGridSize, CellPixels = 32 };
        Assert.Equal(2, built.ImageGridSize);
        Assert.Equal(AtlasImageRenderer.RenderPng(built.Atlas, icons, options), png);
        Assert.NotEqual(AtlasImageRenderer.RenderPng(built.Atlas, examples, options), png);
    }

    [Fact]
    public void EveryInvertedCellCarriesItsDownstreamAgreementAndAnUntrainedIconScoresLower()
    {
        var built = fixture.Default;
        var atlas = built.Atlas;
        var classes = built.ClassNames;
        Assert.Equal(["cat", "frog", "ship"], classes.Order());
        foreach (int grid in new[] { 2, 4 })
        {
            var cells = Cells(built.Folder, grid);
            Assert.All(cells, c =>
            {
                // Pooled ReLU features: non-negative, so the cosine is in [0, 1]; label shares give the cell's class, and
                // the class directions of the pooled features the icon's.
                Assert.InRange(c.GetProperty("agreement").GetDouble(), 0.0, 1.0);
                string cellClass = c.GetProperty("cellClass").GetString()!, iconClass = c.GetProperty("iconClass").GetString()!;
                Assert.Contains(cellClass, classes);
                Assert.Contains(iconClass, classes);
                Assert.Equal(cellClass == iconClass, c.GetProperty("classMatch").GetBoolean());
                Assert.Equal(c.GetProperty("top")[0].GetProperty("class").GetString(), cellClass);
                // The same values in the atlas's public cell info.
                var info = built.Icons.Inversion(grid, c.GetProperty("x").GetInt32(), c.GetProperty("y").GetInt32())!;
                Assert.Equal(c.GetProperty("agreement").GetDouble(), info.Agreement!.Value, 4);
                Assert.Equal((cellClass, iconClass, cellClass == iconClass), (info.CellTopClass, info.IconTopClass, info.TopClassMatches));
            });
        }
        var quality = IconSummary(built.Folder).GetProperty("quality");
        Assert.InRange(quality.GetProperty("medianAgreement").GetDouble(), 0.0, 1.0);
        Assert.Equal(atlas.Levels.Sum(l => l.Cells.Count), quality.GetProperty("classCompared").GetInt32());

        // Re-rendered through the public API with the build's settings, the optimised icons of the coarse grid agree
        // with their members downstream better than untrained icons (Steps = 0) of the same cells, and better than
        // the optimised icon of another cell; the build measured what the same renderer measures.
        // In the builder's order (busiest first), so each icon gets the same random stream.
        var coarse = atlas.Level(2).Cells.OrderByDescending(c => c.Count).ThenBy(c => c.Y).ThenBy(c => c.X).ToList();
        var directions = coarse.Select(c => c.MeanActivation.ToArray()).ToList();
        var options = new FeatureInversionEstimator.Options { Model = PretrainedModels.ResNet18, Layer = InvertedAtlasFixture.Layer, Steps = 16, Seed = 5 };
        var untrainedOptions = new FeatureInversionEstimator.Options { Model = PretrainedModels.ResNet18, Layer = InvertedAtlasFixture.Layer, Steps = 0, Seed = 5 };
        var ml = new MLContext(1);
        using var renderer = ml.Transforms.CreateIconRenderer(options);
        using var untrainedRenderer = ml.Transforms.CreateIconRenderer(untrainedOptions);
        var optimised = renderer.LayerMeans(renderer.Render(directions));
        var untrained = untrainedRenderer.LayerMeans(untrainedRenderer.Render(directions));
        var own = coarse.Select((c, i) => Cosine(optimised[i], directions[i])).ToArray();
        var start = coarse.Select((c, i) => Cosine(untrained[i], directions[i])).ToArray();
        var stored = coarse.Select(c => built.Icons.Inversion(2, c.X, c.Y)!.Agreement!.Value).ToArray();
        output.WriteLine($"downstream agreement, coarse cells: built {string.Join(", ", stored.Select(F3))}; re-rendered {string.Join(", ", own.Select(F3))}; untrained {string.Join(", ", start.Select(F3))}");
        Assert.True(own.Average() > start.Average() + 0.05, $"optimised icons' mean agreement {own.Average():F3} does not beat untrained icons' {start.Average():F3} by 0.05");
        for (int i = 0; i < coarse.Count; i++)
            Assert.Equal(stored[i], own[i], 0.02);
        if (coarse.Count > 1)
        {
            var shifted = coarse.Select((c, i) => Cosine(optimised[(i + 1) % coarse.Count], directions[i])).ToArray();
            output.WriteLine($"another cell's icon: {string.Join(", ", shifted.Select(F3))}");
            Assert.True(own.Average() > shifted.Average(), $"own icons' mean agreement {own.Average():F3} does not beat other cells' icons' {shifted.Average():F3}");
        }

        static string F3(double v) => v.ToString("F3", CultureInfo.InvariantCulture);
    }

    [Fact]
    public void WithATrainedHeadTheIconsTopClassIsTheHeadsReadingOfItsPooledFeatures()
    {
        var options = InvertedAtlasFixture.Options();
        options.Head = AtlasHeadKind.Train;
        options.GridSizes = [2];
        var built = new MLContext(1).Atlas().Build(fixture.Images, Path.Combine(fixture.Root, "trained-head"), options);
        var head = built.TrainedHead();
        var coarse = built.Atlas.Level(2).Cells.OrderByDescending(c => c.Count).ThenBy(c => c.Y).ThenBy(c => c.X).ToList();
        var ml = new MLContext(1);
        using var renderer = ml.Transforms.CreateIconRenderer(new FeatureInversionEstimator.Options
        {
            Model = PretrainedModels.ResNet18, Layer = InvertedAtlasFixture.Layer, Steps = 16, Seed = 5,
        });
        var pooled = renderer.LayerMeans(renderer.Render(coarse.Select(c => c.MeanActivation.ToArray()).ToList()));
        for (int i = 0; i < coarse.Count; i++)
        {
            var info = built.Icons.Inversion(2, coarse[i].X, coarse[i].Y)!;
            output.WriteLine($"cell ({coarse[i].X}, {coarse[i].Y}): agreement {info.Agreement:F3}, icon {info.IconTopClass}, cell {info.CellTopClass}");
            Assert.Equal(head.ClassNames[head.Predict(pooled[i])], info.IconTopClass);
            Assert.Equal(coarse[i].TopClasses[0].Name, info.CellTopClass);
            Assert.InRange(info.Agreement!.Value, 0.0, 1.0);
        }
    }

    [Fact]
    public void ATinyBudgetLeavesExampleStandInsMarkedInAtlasJson()
    {
        var built = fixture.Tiny;
        Assert.NotNull(built.IconNote);
        Assert.Contains("budget", built.IconNote);
        var summary = IconSummary(built.Folder);
        Assert.Contains("stand-in", summary.GetProperty("note").GetString());
        var cells = Cells(built.Folder, 2).Concat(Cells(built.Folder, 4)).ToArray();
        var standIns = cells.Where(c => c.GetProperty("icon").GetString() == "example").ToArray();
        Assert.NotEmpty(standIns);
        Assert.True(standIns.Length < cells.Length || cells.Length > 0);
        Assert.All(cells, c => Assert.Equal(c.GetProperty("icon").GetString() == "inversion", c.TryGetProperty("fidelity", out _)));
        // The finer grid's cells, started only after the budget, are all example stand-ins.
        Assert.All(Cells(built.Folder, 4), c => Assert.Equal("example", c.GetProperty("icon").GetString()));
        foreach (var cell in built.Atlas.Level(4).Cells)
        {
            Assert.Null(built.Icons.Inversion(4, cell.X, cell.Y));
            Assert.Equal(built.Icons.GetExample(4, cell.X, cell.Y), built.Icons.Get(4, cell.X, cell.Y));
        }
        string html = File.ReadAllText(Path.Combine(built.Folder, "index.html"));
        Assert.Contains("\"iconNote\":", html);
    }

    [Fact]
    public void AZeroOrNegativeBudgetIsAnErrorNamingTheOption()
    {
        foreach (var budget in new[] { TimeSpan.Zero, TimeSpan.FromSeconds(-5) })
        {
            var options = InvertedAtlasFixture.Options();
            options.IconBudget = budget;
            string outDir = Path.Combine(fixture.Root, "zero-" + Guid.NewGuid().ToString("N"));
            var e = Assert.Throws<ArgumentOutOfRangeException>(() => new MLContext(1).Atlas().Build(fixture.Images, outDir, options));
            Assert.Contains("AtlasBuildOptions.IconBudget", e.Message);
            Assert.False(Directory.Exists(outDir) || Directory.Exists(outDir + ".partial"));
        }
        foreach (var text in new[] { "0", "0m", "-3s" })
        {
            string outDir = Path.Combine(fixture.Root, "zero-cli");
            var (code, err) = AtlasTool.Run("build", "--model", "resnet18", "--layer", InvertedAtlasFixture.Layer, "--images", fixture.Images, "--out", outDir,
                "--icon-budget", text);
            Assert.Equal(2, code);
            Assert.Contains("--icon-budget", err);
            Assert.Contains("not positive", err);
            Assert.False(Directory.Exists(outDir) || Directory.Exists(outDir + ".partial"));
        }
        // Zero icon steps: refused before anything is written, naming the option.
        var noSteps = InvertedAtlasFixture.Options();
        noSteps.IconSteps = 0;
        string stepsDir = Path.Combine(fixture.Root, "zero-steps");
        Assert.Contains("AtlasBuildOptions.IconSteps", Assert.Throws<ArgumentOutOfRangeException>(() => new MLContext(1).Atlas().Build(fixture.Images, stepsDir, noSteps)).Message);
        Assert.False(Directory.Exists(stepsDir) || Directory.Exists(stepsDir + ".partial"));
        var (badCode, badErr) = AtlasTool.Run("build", "--model", "resnet18", "--layer", InvertedAtlasFixture.Layer, "--images", fixture.Images,
            "--out", Path.Combine(fixture.Root, "bad-cli"), "--icon-budget", "soon");
        Assert.Equal(2, badCode);
        Assert.Contains("--icon-budget: 'soon'", badErr);
    }

    [Fact]
    public void AnInterruptedIconStepResumesFromTheStoredIcons()
    {
        string outDir = Path.Combine(fixture.Root, "resumed");
        string coarseIcons = Path.Combine(outDir + ".partial", "cache", "icons-2");
        using var cancel = new CancellationTokenSource();
        var options = InvertedAtlasFixture.Options();
        // Cancelled once the coarse grid's icons are stored, before the finer grid's.
        var interrupted = new SyncProgress<AtlasBuildProgress>(p =>
        {
            if (p.Stage == "inversion" && Directory.Exists(coarseIcons) && Directory.GetFiles(coarseIcons, "*.json").Length > 0)
                cancel.Cancel();
        });
        Assert.ThrowsAny<OperationCanceledException>(() => new MLContext(1).Atlas().Build(fixture.Images, outDir, options, interrupted, cancel.Token));
        Assert.False(Directory.Exists(outDir));
        var stored = Directory.GetFiles(coarseIcons, "*.png").ToDictionary(f => Path.GetFileName(f), File.ReadAllBytes);
        Assert.NotEmpty(stored);
        Assert.NotEmpty(Directory.GetFiles(coarseIcons, "*.params"));
        Assert.False(Directory.Exists(Path.Combine(outDir + ".partial", "cache", "icons-4")));

        var stages = new List<AtlasBuildProgress>();
        var built = new MLContext(1).Atlas().Build(fixture.Images, outDir, options, new SyncProgress<AtlasBuildProgress>(stages.Add));
        string note = stages.Single(s => s.Stage == "inversion" && s.Status == AtlasStageStatus.Done).Note!;
        output.WriteLine(note);
        Assert.Contains($"({stored.Count.ToString("N0", CultureInfo.InvariantCulture)} stored", note);
        foreach (var cell in built.Atlas.Level(2).Cells)
            Assert.Equal(stored[$"{cell.X}_{cell.Y}.png"], built.Icons.Get(2, cell.X, cell.Y));
        // The finer cells started from the stored parents' parameters.
        Assert.All(Cells(outDir, 4), c => Assert.True(c.GetProperty("warmStarted").GetBoolean()));
        Assert.All(Cells(outDir, 4), c => Assert.Equal("inversion", c.GetProperty("icon").GetString()));
    }

    [Fact]
    public async Task TheCliWritesInvertedIconsWhoseFidelityThroughStockMlNetBeatsAnUntrainedIcon()
    {
        string images = InvertedAtlasFixture.CopyImages(fixture.Root, "cli-images", 6, "ship", "frog");
        string atlasDir = Path.Combine(fixture.Root, "cli-atlas");
        var (code, err) = AtlasTool.Run("build", "--model", "resnet18", "--layer", InvertedAtlasFixture.Layer, "--images", images, "--out", atlasDir,
            "--grids", "2", "--icon-size", "32", "--icons", "inversion", "--icon-steps", "64", "--icon-budget", "30m", "--seed", "2");
        Assert.True(code == 0, err);
        Assert.Contains("  inversion", err);
        var built = new MLContext(1).Atlas().Open(atlasDir);
        var cells = Cells(atlasDir, 2).Where(c => c.GetProperty("icon").GetString() == "inversion").ToArray();
        Assert.NotEmpty(cells);

        var ml = new MLContext(1);
        var rows = new List<IconFile>();
        var targets = new List<float[]>();
        string untrainedDir = Path.Combine(fixture.Root, "untrained");
        Directory.CreateDirectory(untrainedDir);
        foreach (var c in cells)
        {
            var cell = built.Atlas.Level(2).Find(c.GetProperty("x").GetInt32(), c.GetProperty("y").GetInt32())!;
            var direction = cell.MeanActivation.ToArray();
            // The written icon, reloaded from its PNG.
            rows.Add(new IconFile { Path = Path.Combine(atlasDir, "cache", "icons-2", $"{cell.X}_{cell.Y}.png") });
            // An untrained icon of the same cell: the renderer's starting image (one step at a vanishing rate).
            var untrained = ml.Transforms.VisualizeDirection(new FeatureInversionEstimator.Options
            {
                Model = PretrainedModels.ResNet18, Layer = InvertedAtlasFixture.Layer, Steps = 1, LearningRate = 1e-9, Seed = 2,
            }, direction);
            string path = Path.Combine(untrainedDir, $"{cell.X}_{cell.Y}.png");
            File.WriteAllBytes(path, AtlasIcons.EncodeRgba(untrained.Icon.ToRgba(), untrained.Icon.Size, untrained.Icon.Size));
            rows.Add(new IconFile { Path = path });
            targets.Add(direction);
        }

        // Stock ML.NET, as the atlas sees real images: the icon resized to the network's 224 px input, ResNet18's
        // preprocessing and network, and the spatial mean of the layer (Pooling395_Output_0).
        var data = ml.Data.LoadFromEnumerable(rows);
        var stock = ml.Transforms.LoadImages("Image", imageFolder: null, inputColumnName: nameof(IconFile.Path))
            .Append(ml.Transforms.ResizeImages("Image", 224, 224, "Image"))
            .Append(ml.Transforms.ExtractPixels("OriginalInput", "Image"))
            .Append(ml.Transforms.ApplyOnnxModel(["PreprocessedInput"], ["OriginalInput"], SharedData.ResNet18PreprocessPath))
            .Append(ml.Transforms.CopyColumns("Input247", "PreprocessedInput"))
            .Append(ml.Transforms.ApplyOnnxModel(["Pooling395_Output_0"], ["Input247"], SharedData.ResNet18ModelPath));
        var features = stock.Fit(data).Transform(data).GetColumn<VBuffer<float>>("Pooling395_Output_0").Select(v => v.DenseValues().ToArray()).ToArray();
        var trained = new List<double>();
        var untrainedFidelity = new List<double>();
        for (int i = 0; i < targets.Count; i++)
        {
            trained.Add(Cosine(features[2 * i], targets[i]));
            untrainedFidelity.Add(Cosine(features[2 * i + 1], targets[i]));
        }
        output.WriteLine($"fidelity through stock ML.NET (224 px, spatial mean): inverted {string.Join(", ", trained.Select(f => f.ToString("F3", CultureInfo.InvariantCulture)))}; " +
            $"untrained {string.Join(", ", untrainedFidelity.Select(f => f.ToString("F3", CultureInfo.InvariantCulture)))}");
        Assert.True(trained.Average() > untrainedFidelity.Average() + 0.1,
            $"inverted icons' mean fidelity {trained.Average():F3} does not beat untrained icons' {untrainedFidelity.Average():F3} by 0.1");
        await Task.CompletedTask;
    }

    private static double Cosine(float[] a, float[] b)
    {
        double dot = 0, na = 0, nb = 0;
        for (int i = 0; i < a.Length; i++)
        {
            dot += a[i] * (double)b[i];
            na += a[i] * (double)a[i];
            nb += b[i] * (double)b[i];
        }
        return dot / Math.Sqrt(na * nb);
    }

    private sealed class IconFile
    {
        public string Path { get; set; } = "";
    }

    [Fact]
    public async Task TheViewerSwitchesCellsBetweenIconsAndExamplesAndMarksStandIns()
    {
        var built = fixture.Default;
        await using var chrome = await HeadlessChromium.StartAsync();
        await chrome.NavigateAsync(Path.Combine(built.Folder, "index.html"));
        await chrome.WaitForAsync("window.atlasViewer && atlasViewer.levels.every(l => l.sheets.concat(l.exampleSheets).every(s => s.complete && s.naturalWidth > 0))");
        Assert.False((await chrome.EvaluateAsync("document.getElementById('icons-toggle').hidden"))!.GetValue<bool>());

        int grid = (await chrome.EvaluateAsync("atlasViewer.gridSize()"))!.GetValue<int>();
        var cell = built.Atlas.Level(grid).Cells.OrderByDescending(c => c.Count).First();
        var info = built.Icons.Inversion(grid, cell.X, cell.Y)!;
        var centre = (await chrome.EvaluateAsync($"atlasViewer.cellCenter({cell.X}, {cell.Y})"))!;
        double cx = centre["x"]!.GetValue<double>(), cy = centre["y"]!.GetValue<double>();
        // The screenshot's pixels around the cell's centre (a canvas drawn from file:// images cannot be read back).
        string Pixel()
        {
            using var shot = SKBitmap.Decode(chrome.ScreenshotAsync().Result);
            double scale = shot.Width / (chrome.EvaluateAsync("window.innerWidth").Result!.GetValue<double>());
            var values = new List<uint>();
            for (int dy = -6; dy < 6; dy++)
                for (int dx = -6; dx < 6; dx++)
                    values.Add((uint)shot.GetPixel((int)Math.Round((cx + dx) * scale), (int)Math.Round((cy + dy) * scale)));
            return string.Join(",", values);
        }
        await chrome.ClickAsync(cx, cy);
        await chrome.WaitForAsync("!document.getElementById('cell-info').hidden");
        string Text(string id) => chrome.EvaluateAsync($"document.getElementById('{id}').textContent").Result!.GetValue<string>();
        string text = Text("cell-icon");
        var shown = System.Text.RegularExpressions.Regex.Match(text, @"^Inverted icon: fidelity ([0-9.]+), plausibility ([0-9.]+) · (\d+) steps");
        Assert.True(shown.Success, text);
        Assert.Equal(info.Fidelity, double.Parse(shown.Groups[1].Value, CultureInfo.InvariantCulture), 0.002);
        Assert.Equal(info.Plausibility!.Value, double.Parse(shown.Groups[2].Value, CultureInfo.InvariantCulture), 0.002);
        Assert.Equal(info.Steps, int.Parse(shown.Groups[3].Value, CultureInfo.InvariantCulture));
        // Its downstream agreement and top classes, under the fidelity line.
        string downstream = Text("cell-agreement");
        var agreement = System.Text.RegularExpressions.Regex.Match(downstream, @"^Downstream agreement ([0-9.]+) · icon’s top class (\w+)(, as the cell’s|, the cell’s (\w+))$");
        Assert.True(agreement.Success, downstream);
        Assert.Equal(info.Agreement!.Value, double.Parse(agreement.Groups[1].Value, CultureInfo.InvariantCulture), 0.002);
        Assert.Equal(info.IconTopClass, agreement.Groups[2].Value);
        Assert.Equal(info.TopClassMatches!.Value, agreement.Groups[4].Value.Length == 0);
        if (info.TopClassMatches == false)
            Assert.Equal(info.CellTopClass, agreement.Groups[4].Value);
        // The summary line under the title: the medians and matches of atlas.json.
        var quality = IconSummary(built.Folder).GetProperty("quality");
        string summaryLine = Text("icon-quality");
        var medians = System.Text.RegularExpressions.Regex.Match(summaryLine,
            @"^Inverted icons \((\d+)\): median fidelity ([0-9.]+), plausibility ([0-9.]+), downstream agreement ([0-9.]+) · top class as the cell’s in (\d+) of (\d+)$");
        Assert.True(medians.Success, summaryLine);
        Assert.Equal(built.Icons.InvertedCount, int.Parse(medians.Groups[1].Value, CultureInfo.InvariantCulture));
        Assert.Equal(quality.GetProperty("medianFidelity").GetDouble(), double.Parse(medians.Groups[2].Value, CultureInfo.InvariantCulture), 0.002);
        Assert.Equal(quality.GetProperty("medianPlausibility").GetDouble(), double.Parse(medians.Groups[3].Value, CultureInfo.InvariantCulture), 0.002);
        Assert.Equal(quality.GetProperty("medianAgreement").GetDouble(), double.Parse(medians.Groups[4].Value, CultureInfo.InvariantCulture), 0.002);
        Assert.Equal(quality.GetProperty("classMatches").GetInt32(), int.Parse(medians.Groups[5].Value, CultureInfo.InvariantCulture));
        Assert.Equal(quality.GetProperty("classCompared").GetInt32(), int.Parse(medians.Groups[6].Value, CultureInfo.InvariantCulture));
        Assert.False((await chrome.EvaluateAsync("document.getElementById('icon-quality').hidden"))!.GetValue<bool>());
        string iconPixels = Pixel();
        string Shows() => $"atlasViewer.showsExample(atlasViewer.levels[atlasViewer.state.level].byKey.get('{cell.X},{cell.Y}'))";
        Assert.False((await chrome.EvaluateAsync(Shows()))!.GetValue<bool>());

        // The cell's own switch shows its example image, and back.
        await chrome.EvaluateAsync("document.getElementById('cell-icon-switch').click()");
        Assert.True((await chrome.EvaluateAsync(Shows()))!.GetValue<bool>());
        Assert.Equal("Show the inverted icon", Text("cell-icon-switch"));
        string examplePixels = Pixel();
        Assert.NotEqual(iconPixels, examplePixels);
        var shot = await chrome.ScreenshotAsync();
        Directory.CreateDirectory(ViewerBrowserTests.ScreenshotFolder);
        await File.WriteAllBytesAsync(Path.Combine(ViewerBrowserTests.ScreenshotFolder, "inverted-cell-example.png"), shot);
        await chrome.EvaluateAsync("document.getElementById('cell-icon-switch').click()");
        Assert.Equal(iconPixels, Pixel());

        // The global switch: every inverted cell shows its example image.
        await chrome.EvaluateAsync("document.getElementById('show-examples').click()");
        Assert.True((await chrome.EvaluateAsync("atlasViewer.levels.every(l => l.cells.every(c => atlasViewer.showsExample(c)))"))!.GetValue<bool>());
        Assert.Equal(examplePixels, Pixel());
        await chrome.EvaluateAsync("document.getElementById('show-examples').click()");
        Assert.Equal(iconPixels, Pixel());
        await File.WriteAllBytesAsync(Path.Combine(ViewerBrowserTests.ScreenshotFolder, "inverted-atlas.png"), await chrome.ScreenshotAsync());

        // The atlas whose budget ran out: its note under the title, and a finer cell marked as an example stand-in.
        await chrome.NavigateAsync(Path.Combine(fixture.Tiny.Folder, "index.html"));
        await chrome.WaitForAsync("window.atlasViewer && atlasViewer.levels.every(l => l.sheets.every(s => s.complete && s.naturalWidth > 0))");
        Assert.Contains("budget", Text("icon-note"));
        int fineGrid = (await chrome.EvaluateAsync("atlasViewer.gridSize()"))!.GetValue<int>();
        Assert.Equal(4, fineGrid);
        var standIn = fixture.Tiny.Atlas.Level(4).Cells.First();
        var at = (await chrome.EvaluateAsync($"atlasViewer.cellCenter({standIn.X}, {standIn.Y})"))!;
        await chrome.ClickAsync(at["x"]!.GetValue<double>(), at["y"]!.GetValue<double>());
        await chrome.WaitForAsync("!document.getElementById('cell-info').hidden");
        Assert.Equal("Example stand-in: this cell has no inverted icon", Text("cell-icon"));
        Assert.True((await chrome.EvaluateAsync("document.getElementById('cell-icon-switch').hidden"))!.GetValue<bool>());
    }
}
