using System.Globalization;
using System.Text.Json.Nodes;
using Microsoft.ML.ActivationAtlas.Building;
using Microsoft.ML.ActivationAtlas.Datasets;
using Microsoft.ML.ActivationAtlas.Extraction;
using Microsoft.ML.ActivationAtlas.Tests.Infrastructure;
using Microsoft.ML.ActivationAtlas.Tests.Rendering;
using Microsoft.ML.Data;
using Xunit.Abstractions;

namespace Microsoft.ML.ActivationAtlas.Tests.Building;

/// <summary>Linked atlases of ResNet18's last three stages over 120 CIFAR-10 images, built once for the tests.</summary>
public sealed class LinkedLayerAtlasFixture : IDisposable
{
    public static readonly string[] LayerNames = ["ReLU315_Output_0", "ReLU347_Output_0", "ReLU393_Output_0"];

    public LinkedLayerAtlasFixture()
    {
        Root = Path.Combine(Path.GetTempPath(), "atlas-linked-" + Guid.NewGuid().ToString("N"));
        Images = Path.Combine(Root, "images");
        foreach (var (path, label) in SharedData.CifarImages(12))
        {
            Directory.CreateDirectory(Path.Combine(Images, label));
            File.Copy(path, Path.Combine(Images, label, Path.GetFileName(path)));
        }
        Folder = Path.Combine(Root, "linked");
        Atlas = new MLContext(3).Atlas().BuildLayers(Images, Folder, LayerNames, Options());
        Links = JsonNode.Parse(File.ReadAllText(Path.Combine(Folder, LinkedAtlas.LinksFile)))!;
    }

    public static AtlasBuildOptions Options() => new()
    {
        Model = PretrainedModels.ResNet18,
        GridSizes = [4, 8],
        IconSize = 24,
        Seed = 3,
        Icons = AtlasIconKind.Examples,
    };

    public string Root { get; }

    public string Images { get; }

    public string Folder { get; }

    public LinkedAtlas Atlas { get; }

    public JsonNode Links { get; }

    /// <summary>Each row's cell (y * size + x) of a layer's grid, from the top-level atlas.json.</summary>
    public int[] Cells(int layer, int grid) => Links["cells"]![layer]![grid.ToString(CultureInfo.InvariantCulture)]!.AsArray().Select(v => v!.GetValue<int>()).ToArray();

    /// <summary>A layer's own atlas.json.</summary>
    public JsonNode LayerJson(int layer) => JsonNode.Parse(File.ReadAllText(Path.Combine(Folder, Links["layers"]![layer]!["folder"]!.GetValue<string>(), "atlas.json")))!;

    public void Dispose()
    {
        if (Directory.Exists(Root))
            Directory.Delete(Root, true);
    }
}

/// <summary>
/// <c>BuildLayers</c> on ResNet18: one network pass for all layers, every image read at the same image location on
/// each layer, each layer's atlas the single-layer build of the same rows, and the links between the layers'
/// cells in atlas.json and in the viewer (a real headless Chromium).
/// </summary>
public sealed class LinkedLayerAtlasTests(LinkedLayerAtlasFixture fixture, ITestOutputHelper output) : IClassFixture<LinkedLayerAtlasFixture>
{
    [Fact]
    public void PositionsCoverTheSameImageRegionOnEveryLayer()
    {
        var links = fixture.Links;
        var input = links["input"]!.AsArray().Select(v => v!.GetValue<int>()).ToArray();
        var layers = links["layers"]!.AsArray().Select(l => (H: l!["height"]!.GetValue<int>(), W: l["width"]!.GetValue<int>())).ToArray();
        Assert.Equal([(28, 28), (14, 14), (7, 7)], layers);
        Assert.Equal("ReLU315_Output_0", links["reference"]!.GetValue<string>());
        var positions = links["positions"]!.AsArray().Select(p => p!.AsArray().Select(v => v!.GetValue<int>()).ToArray()).ToArray();
        int n = fixture.Atlas.RowCount;
        double coarsestStride = (double)input[0] / layers.Min(l => l.H);
        var distinct = new HashSet<(int, int)>();
        for (int r = 0; r < n; r++)
        {
            var centres = new (double Y, double X)[layers.Length];
            for (int l = 0; l < layers.Length; l++)
            {
                int y = positions[l][2 * r], x = positions[l][2 * r + 1];
                // Away from the edges on every layer.
                Assert.InRange(y, 1, layers[l].H - 2);
                Assert.InRange(x, 1, layers[l].W - 2);
                centres[l] = ((y + 0.5) * input[0] / layers[l].H, (x + 0.5) * input[1] / layers[l].W);
            }
            for (int a = 0; a < layers.Length; a++)
                for (int b = a + 1; b < layers.Length; b++)
                {
                    Assert.True(Math.Abs(centres[a].Y - centres[b].Y) <= coarsestStride / 2 && Math.Abs(centres[a].X - centres[b].X) <= coarsestStride / 2,
                        $"row {r}: layer {a} cell centred at {centres[a]} px, layer {b} at {centres[b]} px, more than half of a {coarsestStride} px stride apart");
                }
            distinct.Add((positions[0][2 * r], positions[0][2 * r + 1]));
        }
        // The finest layer's positions are not confined to the coarse grid's cell centres.
        Assert.True(distinct.Count > n / 3, $"only {distinct.Count} distinct positions on the 28x28 grid for {n} images");
    }

    [Fact]
    public void OneNetworkPassServesEveryLayerWithTheVectorsAtTheMappedCells()
    {
        var images = SharedData.CifarImages(1).Select(x => x.Path).ToArray();
        using var aligned = new AlignedExtraction(PretrainedModels.ResNet18, LinkedLayerAtlasFixture.LayerNames, seed: 3, margin: 1, batchSize: 4, new());
        var (activations, means, positions) = aligned.Run(images, null, CancellationToken.None);
        Assert.Equal(3, aligned.SessionRuns); // 10 images in batches of 4: one run per batch for the three layers together
        Assert.Equal(3, activations.Length);

        // Each layer's vector is the layer's activation at the mapped cell (checked against a single-layer extraction of every position).
        var ml = new MLContext(1);
        var data = ml.Data.LoadFromEnumerable(images.Select(p => new ImagePathRow { ImagePath = p }));
        for (int l = 0; l < 3; l++)
        {
            var layer = aligned.Layers[l];
            using var all = ml.Transforms.ExtractActivations(new ActivationExtractingEstimator.Options
            {
                Model = PretrainedModels.ResNet18,
                Layers = [layer.Name],
                InputColumnName = nameof(ImagePathRow.ImagePath),
                Sampling = ActivationSampling.AllPositions,
            }).Fit(data);
            var rows = ml.Data.CreateEnumerable<ActivationRow>(all.Transform(data), reuseRowObject: false).ToArray();
            int hw = layer.Height * layer.Width, c = layer.Channels;
            Assert.Equal(images.Length * hw, rows.Length);
            for (int i = 0; i < images.Length; i++)
            {
                int y = aligned.Sampler.LayerY(positions[2 * i], layer.Height), x = aligned.Sampler.LayerX(positions[2 * i + 1], layer.Width);
                var expected = rows[i * hw + y * layer.Width + x].Activations;
                var actual = activations[l].AsSpan(i * c, c).ToArray();
                for (int k = 0; k < c; k++)
                    Assert.Equal(expected[k], actual[k], 1e-4f * (1 + Math.Abs(expected[k])));
                var mean = Enumerable.Range(0, c).Select(k => Enumerable.Range(0, hw).Average(p => rows[i * hw + p].Activations[k])).ToArray();
                for (int k = 0; k < c; k++)
                    Assert.Equal(mean[k], means[l][i * c + k], 1e-3 * (1 + Math.Abs(mean[k])));
            }
        }
    }

    [Fact]
    public void LinkedCellsCountTheSameImages()
    {
        var atlas = fixture.Atlas;
        int checkedCells = 0;
        for (int a = 0; a < 3; a++)
        {
            var layerJson = fixture.LayerJson(a);
            foreach (var grid in layerJson["grids"]!.AsArray())
            {
                int g = grid!["size"]!.GetValue<int>();
                var cellsA = fixture.Cells(a, g);
                foreach (var cell in grid["cells"]!.AsArray())
                {
                    int x = cell!["x"]!.GetValue<int>(), y = cell["y"]!.GetValue<int>(), count = cell["n"]!.GetValue<int>();
                    var rows = Enumerable.Range(0, cellsA.Length).Where(r => cellsA[r] == y * g + x).ToArray();
                    // The rows atlas.json puts in the cell are as many as the layer's own atlas counts there.
                    Assert.Equal(count, rows.Length);
                    for (int b = 0; b < 3; b++)
                    {
                        if (b == a)
                            continue;
                        var cellsB = fixture.Cells(b, g);
                        var follow = atlas.Follow(LinkedLayerAtlasFixture.LayerNames[a], g, x, y, LinkedLayerAtlasFixture.LayerNames[b]);
                        Assert.Equal(count, follow.Sum(f => f.Count));
                        foreach (var (bx, by, n) in follow)
                            Assert.Equal(rows.Where(r => cellsB[r] == by * g + bx).Count(), n);
                        // The same images: every row of the cell is in one of the linked cells.
                        Assert.All(rows, r => Assert.Contains(follow, f => f.Y * g + f.X == cellsB[r]));
                    }
                    checkedCells++;
                }
            }
        }
        output.WriteLine($"{checkedCells} cells followed into the other layers");
        Assert.True(checkedCells > 20);
    }

    [Fact]
    public void EachLayerIsTheSingleLayerBuildOfTheSameRows()
    {
        var ml = new MLContext(3);
        var images = ImageFolder.Scan(fixture.Images, 0, 3);
        var layer = fixture.Atlas.Layer(LinkedLayerAtlasFixture.LayerNames[1]);
        var options = LinkedLayerAtlasFixture.Options();
        options.Layer = LinkedLayerAtlasFixture.LayerNames[1];
        string single = Path.Combine(fixture.Root, "single-" + Guid.NewGuid().ToString("N"));
        ml.Atlas().Build(images, new LayerActivations(options.Layer, layer.ActivationSize, layer.Activations.ToArray()), single, options);
        foreach (var file in new[] { "atlas.json", "atlas.png", "index.html", "rows.json" })
            Assert.True(File.ReadAllBytes(Path.Combine(single, file)).AsSpan().SequenceEqual(File.ReadAllBytes(Path.Combine(layer.Folder, file))),
                $"{file} of the single-layer build differs from the linked build's layer");
    }

    [Fact]
    public async Task ViewerSwitchesLayersAndMarksWhereACellsImagesLanded()
    {
        string shots = Path.Combine(Path.GetTempPath(), "atlas-viewer-screenshots");
        Directory.CreateDirectory(shots);
        await using var chrome = await HeadlessChromium.StartAsync();
        await chrome.NavigateAsync(Path.Combine(fixture.Folder, "index.html"));
        await chrome.WaitForAsync("window.linkedAtlas");
        for (int f = 0; f < 3; f++)
            await chrome.WaitInFrameAsync(f, "window.atlasViewer && atlasViewer.levels.every(l => l.sheets.every(s => s.complete && s.naturalWidth > 0))");

        async Task SwitchTo(int layer)
        {
            var b = (await chrome.EvaluateAsync($"(r => ({{x: r.left + r.width / 2, y: r.top + r.height / 2}}))(document.querySelectorAll('#layers button')[{layer}].getBoundingClientRect())"))!;
            await chrome.ClickAsync(b["x"]!.GetValue<double>(), b["y"]!.GetValue<double>());
            await chrome.WaitForAsync($"linkedAtlas.state.active === {layer} && linkedAtlas.frame({layer}).classList.contains('active')");
        }

        // Switch to the middle layer and click its busiest cell.
        await SwitchTo(1);
        int grid = (await chrome.EvaluateInFrameAsync(1, "atlasViewer.gridSize()"))!.GetValue<int>();
        var cells = fixture.Cells(1, grid);
        int busiest = cells.GroupBy(c => c).OrderByDescending(g => g.Count()).ThenBy(g => g.Key).First().Key;
        int cx = busiest % grid, cy = busiest / grid, count = cells.Count(c => c == busiest);
        var inFrame = (await chrome.EvaluateInFrameAsync(1, $"atlasViewer.cellCenter({cx}, {cy})"))!;
        var frameBox = (await chrome.EvaluateAsync("(r => ({x: r.left, y: r.top}))(linkedAtlas.frame(1).getBoundingClientRect())"))!;
        await chrome.ClickAsync(frameBox["x"]!.GetValue<double>() + inFrame["x"]!.GetValue<double>(), frameBox["y"]!.GetValue<double>() + inFrame["y"]!.GetValue<double>());
        await chrome.WaitForAsync("linkedAtlas.state.selection !== null");
        Assert.Equal(count, (await chrome.EvaluateAsync("linkedAtlas.state.selection.n"))!.GetValue<int>());
        Assert.Equal($"ReLU347_Output_0: cell ({cx}, {cy}) of the {grid}×{grid} grid, {count} images",
            (await chrome.EvaluateAsync("document.getElementById('links-title').textContent"))!.GetValue<string>());
        await File.WriteAllBytesAsync(Path.Combine(shots, "linked-ReLU347_Output_0.png"), await chrome.ScreenshotAsync());

        foreach (int other in new[] { 0, 2 })
        {
            string name = LinkedLayerAtlasFixture.LayerNames[other];
            var expected = fixture.Atlas.Follow("ReLU347_Output_0", grid, cx, cy, name);
            // The panel lists the other layer's cells with counts, as atlas.json gives them.
            var listed = (await chrome.EvaluateAsync($"[...document.querySelectorAll('#links-layers ol[data-layer=\"{name}\"] li')].map(li => li.dataset.cell + ':' + li.querySelector('.count').textContent)"))!.AsArray()
                .Select(v => v!.GetValue<string>()).ToArray();
            Assert.Equal(expected.Select(e => $"{e.X},{e.Y}:{e.Count} image" + (e.Count == 1 ? "" : "s")), listed);
            Assert.Equal(count, expected.Sum(e => e.Count));

            // The other layer's viewer frames those cells, with the counts, on the grid it shows.
            await SwitchTo(other);
            int shown = (await chrome.EvaluateInFrameAsync(other, "atlasViewer.gridSize()"))!.GetValue<int>();
            await chrome.WaitInFrameAsync(other, "atlasViewer.marked().length > 0");
            var marked = (await chrome.EvaluateInFrameAsync(other, "atlasViewer.marked().map(m => m.x + ',' + m.y + ':' + m.n)"))!.AsArray().Select(v => v!.GetValue<string>()).ToArray();
            var selectedRows = Enumerable.Range(0, cells.Length).Where(r => cells[r] == busiest).ToArray();
            var otherCells = fixture.Cells(other, shown);
            var expectedShown = selectedRows.GroupBy(r => otherCells[r]).Select(g => $"{g.Key % shown},{g.Key / shown}:{g.Count()}");
            Assert.Equal(expectedShown.Order(), marked.Order());
            await File.WriteAllBytesAsync(Path.Combine(shots, $"linked-{name}.png"), await chrome.ScreenshotAsync());
        }

        // A class chosen in one layer stays chosen in the others.
        await chrome.EvaluateInFrameAsync(2, "atlasViewer.selectClass('ship')");
        for (int f = 0; f < 3; f++)
            await chrome.WaitInFrameAsync(f, "atlasViewer.state.classIndex !== null && document.getElementById('class-message').textContent === 'Per-class view: ship'");
        Assert.Equal("Class in every layer: ship", (await chrome.EvaluateAsync("document.getElementById('class-state').textContent"))!.GetValue<string>());
        await SwitchTo(0);
        await File.WriteAllBytesAsync(Path.Combine(shots, "linked-class-ship.png"), await chrome.ScreenshotAsync());
        output.WriteLine($"screenshots in {shots}");
    }

    [Fact]
    public async Task ClassAtlasesOfEveryLayerSideBySideKeepOneClass()
    {
        string dir = Path.Combine(fixture.Root, "class-" + Guid.NewGuid().ToString("N"));
        var written = fixture.Atlas.WriteClassAtlases("Ship", dir, gridSizes: [2, 4]);
        Assert.Equal(LinkedLayerAtlasFixture.LayerNames, written.Select(w => w.Layer));
        for (int l = 0; l < 3; l++)
        {
            // Label shares: the rank filter keeps the 12 ship images on every layer.
            Assert.Equal(12, written[l].Rows);
            var json = JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "layers", LinkedLayerAtlasFixture.LayerNames[l], "atlas.json")))!;
            Assert.Equal(LinkedLayerAtlasFixture.LayerNames[l], json["layer"]!.GetValue<string>());
            // The layers' atlases have example icons, and so have their class atlases.
            Assert.All(json["grids"]!.AsArray().SelectMany(g => g!["cells"]!.AsArray()), c => Assert.Equal("example", c!["icon"]!.GetValue<string>()));
            Assert.Equal(12, json["grids"]![0]!["cells"]!.AsArray().Sum(c => c!["n"]!.GetValue<int>()));
        }
        Assert.Throws<IOException>(() => fixture.Atlas.WriteClassAtlases("ship", dir));

        await using var chrome = await HeadlessChromium.StartAsync(1500, 700);
        await chrome.NavigateAsync(Path.Combine(dir, "index.html"));
        Assert.Equal(3, (await chrome.EvaluateAsync("document.querySelectorAll('#side iframe').length"))!.GetValue<int>());
        for (int f = 0; f < 3; f++)
            await chrome.WaitInFrameAsync(f, "window.atlasViewer && atlasViewer.state.ready");
        await chrome.EvaluateInFrameAsync(1, "atlasViewer.selectClass('cat')");
        foreach (int f in new[] { 0, 2 })
            await chrome.WaitInFrameAsync(f, "document.getElementById('class-message').textContent === 'Per-class view: cat'");
    }

    [Fact]
    public void CommandLineMistakesWithLayersAreNamedAndLeaveNothingBehind()
    {
        string outDir = Path.Combine(fixture.Root, "cli-" + Guid.NewGuid().ToString("N"));
        var (code, error) = Cli.AtlasTool.Run("build", "--model", "resnet18", "--layers", "ReLU347_Output_0,NoSuchLayer", "--images", fixture.Images, "--out", outDir);
        Assert.True(code == 1, $"exit {code}: {error}");
        Assert.Contains("no layer 'NoSuchLayer'", error);
        Assert.False(Directory.Exists(outDir) || Directory.Exists(outDir + ".partial"), "a bad layer leaves no (partial) output folder");
        (code, error) = Cli.AtlasTool.Run("build", "--model", "resnet18", "--layer", "ReLU347_Output_0", "--layers", "ReLU347_Output_0,ReLU393_Output_0", "--images", fixture.Images, "--out", outDir);
        Assert.True(code == 2, $"exit {code}: {error}");
        Assert.Contains("--layer and --layers", error);
        (code, error) = Cli.AtlasTool.Run("build", "--model", "resnet18", "--layers", "ReLU347_Output_0", "--images", fixture.Images, "--out", outDir);
        Assert.True(code == 1, $"exit {code}: {error}");
        Assert.Contains("at least two layers", error);
        (code, error) = Cli.AtlasTool.Run("class", "--atlas", fixture.Atlas.Layers[0].Folder, "--class", "ship", "--layers", "ReLU347_Output_0", "--out", outDir);
        Assert.True(code == 2, $"exit {code}: {error}");
        Assert.Contains("single-layer atlas", error);
        Assert.False(Directory.Exists(outDir) || Directory.Exists(outDir + ".partial"));
    }

    private sealed class ImagePathRow
    {
        public string ImagePath { get; set; } = "";
    }

    private sealed class ActivationRow
    {
        [Microsoft.ML.Data.ColumnName(AtlasColumnNames.Activation)]
        public float[] Activations { get; set; } = [];
    }
}
