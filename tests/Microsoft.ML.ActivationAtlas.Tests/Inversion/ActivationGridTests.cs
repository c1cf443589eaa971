using System.Globalization;
using System.Text.Json.Nodes;
using Microsoft.ML.ActivationAtlas.Building;
using Microsoft.ML.ActivationAtlas.Extraction;
using Microsoft.ML.ActivationAtlas.Inversion;
using Microsoft.ML.ActivationAtlas.Tests.Cli;
using Microsoft.ML.ActivationAtlas.Tests.Infrastructure;
using Microsoft.ML.ActivationAtlas.Tests.Rendering;
using Microsoft.ML.Data;
using SkiaSharp;
using Xunit.Abstractions;

namespace Microsoft.ML.ActivationAtlas.Tests.Inversion;

/// <summary>An atlas of 200 CIFAR-10 test images (the first 20 of each class) on ResNet18's last ReLU with a trained head, built once.</summary>
public sealed class GridAtlasFixture : IDisposable
{
    public GridAtlasFixture()
    {
        Root = Path.Combine(Path.GetTempPath(), "atlas-grid-" + Guid.NewGuid().ToString("N"));
        string images = Path.Combine(Root, "images");
        foreach (var (path, label) in SharedData.CifarImages(20))
        {
            Directory.CreateDirectory(Path.Combine(images, label));
            File.Copy(path, Path.Combine(images, label, Path.GetFileName(path)));
        }
        AtlasFolder = Path.Combine(Root, "atlas");
        Atlas = new MLContext(1).Atlas().Build(images, AtlasFolder, new AtlasBuildOptions
        {
            Model = PretrainedModels.ResNet18,
            Layer = ActivationGridTests.Layer,
            Head = AtlasHeadKind.Train,
            GridSizes = [4, 8],
            IconSize = 24,
            Seed = 3,
        });
    }

    public string Root { get; }

    public string AtlasFolder { get; }

    public BuiltAtlas Atlas { get; }

    public void Dispose()
    {
        if (Directory.Exists(Root))
            Directory.Delete(Root, true);
    }
}

/// <summary>
/// "Looking at a single image" on real data: ResNet18, a CIFAR-10 image and a real photograph larger than 224 px and
/// not square; the grid's shape, its placement on an atlas against the atlas's own pipeline, the trained head's
/// class values against the atlas's, the written files, the page in Chromium, the command line and the bad input.
/// </summary>
public sealed class ActivationGridTests(GridAtlasFixture fixture, ITestOutputHelper output) : IClassFixture<GridAtlasFixture>
{
    public const string Layer = "ReLU393_Output_0";

    /// <summary>
    /// A real photograph, 640x427: the Debian package python3-sklearn (which the tests install) ships it. Neither the
    /// shared folder nor the ResNet18 package holds a photograph.
    /// </summary>
    private const string Photograph = "/usr/lib/python3/dist-packages/sklearn/datasets/images/china.jpg";

    // Few, small steps: the tests check the grid, not the icons' quality.
    private static ActivationGridOptions Fast(BuiltAtlas? atlas = null, string layer = "") => new()
    {
        Model = atlas is null ? PretrainedModels.ResNet18 : null,
        Layer = layer,
        Atlas = atlas,
        IconSteps = 2,
        IconSize = 32,
    };

    private string NewFolder(string name) => Path.Combine(fixture.Root, name + "-" + Guid.NewGuid().ToString("N")[..8]);

    private static string PhotographPath =>
        File.Exists(Photograph) ? Photograph : throw new FileNotFoundException($"The test photograph '{Photograph}' is missing: install python3-sklearn (apt-get install python3-sklearn).");

    [Fact]
    public void AtlasImage_GridPlacedByTheAtlasPipelineWithTheTrainedHeadsValues()
    {
        var atlas = fixture.Atlas;
        int row = 17;
        string image = atlas.ImagePaths[row];
        var grid = atlas.ActivationGrid(image, Fast(atlas));

        // One icon per position of the 7x7 layer, laid out in its grid.
        Assert.Equal((7, 7), (grid.Rows, grid.Columns));
        Assert.Equal(49, grid.Icons.Count);
        int channels = atlas.ActivationSize;
        for (int p = 0; p < 49; p++)
            Assert.Equal(System.Numerics.Tensors.TensorPrimitives.Norm(grid.Activations.AsSpan(p * channels, channels)) > 0, grid.Icons[p] is not null);
        Assert.True(grid.Icons.Count(i => i is not null) > 40);
        Assert.Equal((7 * 32, 7 * 32), (grid.Image.Width, grid.Image.Height));

        // The atlas's own pipeline (its fitted extraction at every position, layout and grid) on that image's rows.
        var ml = new MLContext(1);
        var data = ml.Data.LoadFromEnumerable(new[] { new PathRow { ImagePath = image } });
        using var extraction = ml.Transforms.ExtractActivations(new ActivationExtractingEstimator.Options
        {
            Model = PretrainedModels.ResNet18,
            Layers = [Layer],
            OutputColumnNames = ["Activation"],
            InputColumnName = nameof(PathRow.ImagePath),
            Sampling = ActivationSampling.AllPositions,
        }).Fit(data);
        var placed = atlas.Grid.Transform(atlas.Layout.Transform(extraction.Transform(data)));
        var activations = Read<float>(placed, "Activation");
        var layout = Read<float>(placed, atlas.Layout.OutputColumnName);
        var cells = Read<int>(placed, atlas.Grid.OutputColumnName);
        Assert.Equal(activations.Length, grid.Activations.Length);
        for (int i = 0; i < activations.Length; i++)
            Assert.Equal(activations[i], grid.Activations[i], 1e-4f);
        Assert.Equal(layout, grid.Layout);
        Assert.Equal(cells, grid.Cells);
        var (cx, cy) = grid.Cell(0, 8);
        Assert.Equal(cells[1], cy * 8 + cx);

        // The atlas stored this image's activation at one random position: the grid has it at that position, and the
        // kept head gives it the atlas's class values.
        var stored = atlas.Activations.AsSpan(row * channels, channels).ToArray();
        int match = Enumerable.Range(0, 49).MinBy(p => Distance(stored, grid.Activations.AsSpan(p * channels, channels)));
        Assert.True(Distance(stored, grid.Activations.AsSpan(match * channels, channels)) < 1e-3 * System.Numerics.Tensors.TensorPrimitives.Norm(stored));
        int k = atlas.ClassNames.Count;
        Assert.Equal(atlas.ClassNames, grid.ClassNames);
        Assert.Equal("the atlas's trained head", grid.ClassSource);
        float scale = atlas.ClassValues.AsSpan(row * k, k).ToArray().Max(Math.Abs);
        for (int c = 0; c < k; c++)
            Assert.Equal(atlas.ClassValues[row * k + c], grid.ClassValues[match * k + c], 1e-3f * scale);
        Assert.Equal(ActivationGridOptions.Defaults.TopClasses, grid.TopClasses.Count);
        output.WriteLine($"{image}: label {atlas.Labels[row]}, top classes {string.Join(", ", grid.TopClasses.Select(c => grid.ClassNames[c]))}; " +
            $"{grid.Cells.Where((_, i) => i % 2 == 1).Distinct().Count()} cells of the 8x8 grid");
    }

    [Fact]
    public async Task Photograph_At14x14_WrittenAndShownOnThePageAndTheAtlas()
    {
        string photo = PhotographPath;
        var atlas = fixture.Atlas;
        string dir = NewFolder("photo");
        var stages = new List<string>();
        // ReLU347 is not the atlas's layer: the grid without the atlas, 14x14 at 224 px.
        var grid = new MLContext(1).Transforms.WriteActivationGrid(photo, dir, Fast(layer: "ReLU347_Output_0"),
            new SyncProgress<AtlasBuildProgress>(p => { if (p.Status == AtlasStageStatus.Done) stages.Add(p.Stage); }));
        Assert.Equal(["activations", "icons", "outputs"], stages);
        Assert.Equal((14, 14), (grid.Rows, grid.Columns));
        Assert.Equal(196, grid.Icons.Count);
        Assert.Equal((640, 427), grid.ImageSize);
        Assert.Equal((106, 0, 427, 427), grid.InputRegion);    // the center crop the network sees
        Assert.Empty(grid.ClassNames);
        Assert.Empty(grid.Cells);
        using (var png = SKBitmap.Decode(Path.Combine(dir, "grid.png")))
            Assert.Equal(14 * 32 * 2 + 16, png.Width);
        using (var png = SKBitmap.Decode(Path.Combine(dir, "image.png")))
            Assert.Equal((640, 427), (png.Width, png.Height));
        Assert.False(File.Exists(Path.Combine(dir, "attribution.png")));
        Assert.False(Directory.Exists(Path.Combine(dir, "atlas")));

        // The same photograph on the atlas (7x7), with its class values and its cells in the atlas viewer.
        string onAtlas = NewFolder("photo-atlas");
        var placed = atlas.WriteActivationGrid(photo, onAtlas, Fast());
        Assert.Equal((7, 7), (placed.Rows, placed.Columns));
        foreach (var file in new[] { "grid.png", "image.png", "input.png", "icons.png", "attribution.png", "index.html", "grid.json", "atlas/index.html" })
            Assert.True(File.Exists(Path.Combine(onAtlas, file)), file);
        var json = JsonNode.Parse(File.ReadAllText(Path.Combine(onAtlas, "grid.json")))!;
        Assert.Equal(49, json["positions"]!.AsArray().Count);
        int counted = json["atlasCells"]!.AsArray().First(g => g!["size"]!.GetValue<int>() == 8)!["cells"]!.AsArray().Sum(c => c!["count"]!.GetValue<int>());
        Assert.Equal(49, counted);

        Directory.CreateDirectory(ViewerBrowserTests.ScreenshotFolder);
        await using var chrome = await HeadlessChromium.StartAsync(1400, 900);
        await chrome.NavigateAsync(Path.Combine(onAtlas, "index.html"));
        await chrome.WaitForAsync("document.querySelectorAll('#icons div').length === 49");
        // Hovering a position lists its classes by attribution, as the grid has them.
        int position = 24;
        await chrome.EvaluateAsync($"document.querySelectorAll('#icons div')[{position}].dispatchEvent(new Event('mouseenter'))");
        string where = (await chrome.EvaluateAsync("document.getElementById('where').textContent"))!.GetValue<string>();
        Assert.Equal("Position (y 3, x 3)", where);
        var shown = (await chrome.EvaluateAsync("[...document.querySelectorAll('#details tr')].map(r => r.cells[0].textContent)"))!.AsArray()
            .Select(n => n!.GetValue<string>()).ToArray();
        int k = placed.ClassNames.Count;
        var expected = Enumerable.Range(0, k).OrderByDescending(c => placed.ClassValues[position * k + c]).Take(shown.Length).Select(c => placed.ClassNames[c]);
        Assert.Equal(expected, shown);
        var (x, y) = placed.Cell(position, atlas.ImageGridSize);
        string details = (await chrome.EvaluateAsync("document.getElementById('details').textContent"))!.GetValue<string>();
        Assert.Contains($"Atlas cell ({x}, {y})", details);
        await File.WriteAllBytesAsync(Path.Combine(ViewerBrowserTests.ScreenshotFolder, "grid-photo.png"), await chrome.ScreenshotAsync());

        // The atlas viewer opens on the image's positions.
        await chrome.NavigateAsync(Path.Combine(onAtlas, "atlas", "index.html"));
        await chrome.WaitForAsync("window.atlasViewer && atlasViewer.levels.every(l => l.sheets.every(s => s.complete && s.naturalWidth > 0))");
        string title = (await chrome.EvaluateAsync("document.getElementById('concepts-title').textContent"))!.GetValue<string>();
        Assert.Contains("7x7 positions", title);
        string first = (await chrome.EvaluateAsync("document.querySelector('#concepts-list .value').textContent"))!.GetValue<string>();
        Assert.Contains("% of the positions", first);
        await File.WriteAllBytesAsync(Path.Combine(ViewerBrowserTests.ScreenshotFolder, "grid-photo-atlas.png"), await chrome.ScreenshotAsync());
        output.WriteLine($"{onAtlas}; screenshots in {ViewerBrowserTests.ScreenshotFolder}");
    }

    [Fact]
    public void Cli_WritesTheGridOfACifarImageOnTheAtlas()
    {
        string image = Path.Combine(SharedData.Cifar10Test, "ship", "0003.jpg");
        string dir = NewFolder("cli");
        var (code, error) = AtlasTool.Run("grid", "--atlas", fixture.AtlasFolder, "--image", image, "--icon-steps", "2", "--icon-size", "32", "--out", dir);
        Assert.True(code == 0, error);
        Assert.Contains("7x7 positions of ReLU393_Output_0", error);
        Assert.True(File.Exists(Path.Combine(dir, "atlas", "index.html")));
        Assert.Empty(Directory.GetDirectories(fixture.Root, ".cli-*"));

        // An existing output folder is refused, naming it.
        (code, error) = AtlasTool.Run("grid", "--atlas", fixture.AtlasFolder, "--image", image, "--out", dir);
        Assert.NotEqual(0, code);
        Assert.Contains(dir, error);
        Assert.Contains("already exists", error);
    }

    [Fact]
    public void OnnxClassifier_AttributionOfEveryPositionThroughTheNetworksPooling()
    {
        // A 10-class head after ResNet18's average pool (Pooling395, over the 7x7 positions of ReLU393): the
        // attribution runs the tangent graph through the pool, and must equal h . W_k / 49 at every position.
        var rng = new Random(4);
        var weights = Enumerable.Range(0, 10 * 512).Select(_ => (float)(rng.NextDouble() - 0.5)).ToArray();
        var network = Attribution.ClassifierHead.Attach(PretrainedModels.ResNet18.Network, "Pooling395_Output_0", weights, new float[10],
            Enumerable.Range(0, 10).Select(i => $"c{i}").ToArray());
        var resnet = PretrainedModels.ResNet18;
        var options = Fast(layer: Layer);
        options.HeadModel = ActivationModel.FromBytes(Google.Protobuf.MessageExtensions.ToByteArray(network), resnet.Preprocessing, resnet.PreprocessingModel is null ? null : Google.Protobuf.MessageExtensions.ToByteArray(resnet.PreprocessingModel));
        var grid = new MLContext(1).Transforms.ActivationGrid(Path.Combine(SharedData.Cifar10Test, "horse", "0002.jpg"), options);
        Assert.Equal(Enumerable.Range(0, 10).Select(i => $"c{i}"), grid.ClassNames);
        Assert.StartsWith("classifier", grid.ClassSource);
        float scale = grid.ClassValues.Max(Math.Abs);
        Assert.True(scale > 0);
        for (int p = 0; p < 49; p++)
            for (int k = 0; k < 10; k++)
            {
                float expected = System.Numerics.Tensors.TensorPrimitives.Dot(weights.AsSpan(k * 512, 512), grid.Activations.AsSpan(p * 512, 512)) / 49;
                Assert.Equal(expected, grid.ClassValues[p * 10 + k], 2e-3f * scale);
            }
    }

    [Fact]
    public void BadInput_IsRefusedNamingWhatIsWrong()
    {
        var ml = new MLContext(1);
        string bad = Path.Combine(fixture.Root, "broken.jpg");
        File.WriteAllText(bad, "not an image");
        string image = Path.Combine(SharedData.Cifar10Test, "cat", "0000.jpg");

        var e1 = Assert.Throws<InvalidDataException>(() => ml.Transforms.ActivationGrid(bad, Fast(layer: Layer)));
        Assert.Contains(bad, e1.Message);
        var e2 = Assert.Throws<FileNotFoundException>(() => ml.Transforms.ActivationGrid(bad + ".missing", Fast(layer: Layer)));
        Assert.Contains(bad + ".missing", e2.Message);

        var e3 = Assert.Throws<ArgumentException>(() => ml.Transforms.ActivationGrid(image, Fast(layer: "Pooling395_Output_0")));
        Assert.Contains("Pooling395_Output_0", e3.Message);
        Assert.Contains("[1, 512, 1, 1]", e3.Message);

        var other = Fast(fixture.Atlas, "ReLU347_Output_0");
        var e4 = Assert.Throws<ArgumentException>(() => fixture.Atlas.ActivationGrid(image, other));
        Assert.Contains("layer ReLU393_Output_0", e4.Message);
        Assert.Contains("layer ReLU347_Output_0", e4.Message);
        var foreign = Fast(fixture.Atlas);
        foreign.Model = ActivationModel.FromFile(Path.Combine(SharedData.GradientFixtures, "squeezenet1_1", "model.onnx"));
        var e5 = Assert.Throws<ArgumentException>(() => fixture.Atlas.ActivationGrid(image, foreign));
        Assert.Contains("model resnet18", e5.Message);
        Assert.Contains("squeezenet1_1", e5.Message);

        string existing = NewFolder("exists");
        Directory.CreateDirectory(existing);
        var e6 = Assert.Throws<IOException>(() => ml.Transforms.WriteActivationGrid(image, existing, Fast(layer: Layer)));
        Assert.Contains(existing, e6.Message);
    }

    [Fact]
    public void Cancelled_LeavesNothingBehind()
    {
        string image = Path.Combine(SharedData.Cifar10Test, "dog", "0001.jpg");
        string dir = NewFolder("cancelled");
        using var cts = new CancellationTokenSource();
        var progress = new SyncProgress<AtlasBuildProgress>(p => { if (p.Stage == "icons") cts.Cancel(); });
        Assert.ThrowsAny<OperationCanceledException>(() => new MLContext(1).Transforms.WriteActivationGrid(image, dir, Fast(layer: Layer), progress, cts.Token));
        Assert.False(Directory.Exists(dir));
        Assert.Empty(Directory.GetDirectories(Path.GetDirectoryName(dir)!, "." + Path.GetFileName(dir) + "*"));
    }

    private static double Distance(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        double s = 0;
        for (int i = 0; i < a.Length; i++)
            s += (a[i] - b[i]) * (double)(a[i] - b[i]);
        return Math.Sqrt(s);
    }

    private static T[] Read<T>(IDataView view, string column)
    {
        var col = view.Schema[column];
        var result = new List<T>();
        using var cursor = view.GetRowCursor([col]);
        var get = cursor.GetGetter<VBuffer<T>>(col);
        VBuffer<T> buffer = default;
        while (cursor.MoveNext())
        {
            get(ref buffer);
            result.AddRange(buffer.DenseValues());
        }
        return result.ToArray();
    }

    private sealed class PathRow
    {
        public string ImagePath { get; set; } = "";
    }
}
