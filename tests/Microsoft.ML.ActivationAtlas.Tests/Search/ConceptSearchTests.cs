using System.Diagnostics;
using System.Text.Json;
using Microsoft.ML.ActivationAtlas.Building;
using Microsoft.ML.ActivationAtlas.Datasets;
using Microsoft.ML.ActivationAtlas.Extraction;
using Microsoft.ML.ActivationAtlas.Search;
using Microsoft.ML.ActivationAtlas.Tests.Cli;
using Microsoft.ML.ActivationAtlas.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Microsoft.ML.ActivationAtlas.Tests.Search;

/// <summary>
/// An atlas of 400 CIFAR-10 test images (the first 40 of each class) on ResNet18's last ReLU, built once, and a
/// disjoint collection to search: images 900-949 of each class (500).
/// </summary>
public sealed class SearchAtlasFixture : IDisposable
{
    public SearchAtlasFixture()
    {
        Root = Path.Combine(Path.GetTempPath(), "atlas-search-" + Guid.NewGuid().ToString("N"));
        string images = Path.Combine(Root, "atlas-images");
        foreach (var (path, label) in SharedData.CifarImages(40))
        {
            Directory.CreateDirectory(Path.Combine(images, label));
            File.Copy(path, Path.Combine(images, label, Path.GetFileName(path)));
        }
        Collection = Path.Combine(Root, "collection");
        foreach (var (path, label) in SharedData.CifarImages(950))
        {
            if (int.Parse(Path.GetFileNameWithoutExtension(path)) < 900)
                continue;
            Directory.CreateDirectory(Path.Combine(Collection, label));
            File.Copy(path, Path.Combine(Collection, label, Path.GetFileName(path)));
        }
        var options = new AtlasBuildOptions
        {
            Model = PretrainedModels.ResNet18,
            Layer = "ReLU393_Output_0",
            GridSizes = [4, 8, 16],
            IconSize = 24,
            Icons = AtlasIconKind.Examples,
            Seed = 3,
        };
        var clock = new Stopwatch();
        var progress = new SyncProgress<AtlasBuildProgress>(p =>
        {
            if (p.Stage == "activations" && p.Status == AtlasStageStatus.Running && !clock.IsRunning)
                clock.Start();
            if (p.Stage == "activations" && p.Status == AtlasStageStatus.Done)
                clock.Stop();
        });
        AtlasFolder = Path.Combine(Root, "atlas");
        Atlas = new MLContext(1).Atlas().Build(images, AtlasFolder, options, progress);
        ExtractionImagesPerSecond = 400 / clock.Elapsed.TotalSeconds;
    }

    public string Root { get; }

    public string AtlasFolder { get; }

    public string Collection { get; }

    public BuiltAtlas Atlas { get; }

    /// <summary>The build's extraction speed (one random position per image), to compare the search with.</summary>
    public double ExtractionImagesPerSecond { get; }

    public void Dispose()
    {
        if (Directory.Exists(Root))
            Directory.Delete(Root, true);
    }
}

/// <summary>
/// Concept search on real CIFAR-10 images with ResNet18: the precision of cell and class queries against the labels,
/// the regions, the written gallery and JSON, the command line, and the bad-input messages.
/// </summary>
public sealed class ConceptSearchTests(SearchAtlasFixture fixture, ITestOutputHelper output) : IClassFixture<SearchAtlasFixture>
{
    private string NewFolder(string name) => Path.Combine(fixture.Root, name + "-" + Guid.NewGuid().ToString("N")[..8]);

    /// <summary>A small folder of the collection: its first <paramref name="perClass"/> images of each class.</summary>
    private string Small(int perClass)
    {
        string dir = NewFolder("small");
        foreach (var classDir in Directory.GetDirectories(fixture.Collection))
        {
            Directory.CreateDirectory(Path.Combine(dir, Path.GetFileName(classDir)));
            foreach (var f in Directory.GetFiles(classDir).Order(StringComparer.Ordinal).Take(perClass))
                File.Copy(f, Path.Combine(dir, Path.GetFileName(classDir), Path.GetFileName(f)));
        }
        return dir;
    }

    [Fact]
    public void CellsOfOneLabelFindThatLabelAmongTheTop50()
    {
        var atlas = fixture.Atlas;
        Assert.Equal("label share", atlas.ClassValueName);
        // Cells of at least 3 images of which at least 80% share a label, on every grid.
        var pure = atlas.Atlas.Levels.SelectMany(l => l.Cells)
            .Where(c => c.Count >= 3 && c.TopClasses[0].Value >= 0.8f)
            .ToArray();
        Assert.True(pure.Length >= 3, $"only {pure.Length} cells of one label");
        var queries = pure.Select(c => ConceptQuery.ForCell(atlas, c.GridSize, c.X, c.Y))
            .Concat(atlas.ClassNames.Select(n => ConceptQuery.ForClass(atlas, n)))
            .Concat(atlas.ClassNames.Select((n, k) => ConceptQuery.FromDirection(RawClassMean(atlas, k), $"raw mean of {n}")))
            .ToArray();
        var collection = ImageFolder.Scan(fixture.Collection);
        var labels = collection.Paths.Zip(collection.Labels).ToDictionary(p => p.First, p => p.Second);
        var results = atlas.SearchImages(queries, collection.Paths, 50, p => labels[p]);

        var cellShares = new List<double>();
        for (int i = 0; i < pure.Length; i++)
        {
            var r = results[i];
            Assert.Equal(50, r.Matches.Count);
            Assert.Equal(500, r.ImagesSearched);
            string label = pure[i].TopClasses[0].Name;
            double share = r.Matches.Count(m => m.Label == label) / 50.0;
            cellShares.Add(share);
            output.WriteLine($"{r.Query.Description}: {share:P0} {label} in the top 50");
            // Best first, each the best of its 7x7 positions.
            Assert.True(r.Matches.Zip(r.Matches.Skip(1)).All(p => p.First.Score >= p.Second.Score));
            Assert.All(r.Matches, m => Assert.InRange(m.PositionY, 0, 6));
        }
        var classShares = new List<double>();
        for (int k = 0; k < atlas.ClassNames.Count; k++)
        {
            var r = results[pure.Length + k];
            double share = r.Matches.Count(m => m.Label == atlas.ClassNames[k]) / 50.0;
            classShares.Add(share);
            output.WriteLine($"{r.Query.Description}: {share:P0} in the top 50");
        }
        // The documented choice for classes (the class mean minus the atlas mean) against the raw class mean.
        var rawShares = Enumerable.Range(0, atlas.ClassNames.Count)
            .Select(k => results[pure.Length + atlas.ClassNames.Count + k].Matches.Count(m => m.Label == atlas.ClassNames[k]) / 50.0).ToArray();
        double speed = results[0].ImagesPerSecond;
        output.WriteLine($"cells of one label ({pure.Length}): mean share of their label in the top 50 = {cellShares.Average():P1} (random 10%)");
        output.WriteLine($"classes (10): mean share of the class in the top 50 = {classShares.Average():P1} (random 10%)");
        output.WriteLine($"classes by their raw mean activation instead: {rawShares.Average():P1}");
        output.WriteLine($"search: {speed:0.0} images/s with {queries.Length} queries in one pass; the build's extraction: {fixture.ExtractionImagesPerSecond:0.0} images/s (CPU, shared machine, under load)");
        Assert.True(cellShares.Average() >= 0.3, $"cells of one label found their label in {cellShares.Average():P0} of the top 50 (random: 10%)");
        Assert.True(classShares.Average() >= 0.35, $"classes found themselves in {classShares.Average():P0} of the top 50 (random: 10%)");
        // Searching is extraction at every position; it must not be much slower than the build's extraction.
        Assert.True(speed >= fixture.ExtractionImagesPerSecond / 3, $"{speed:0.0} images/s against extraction's {fixture.ExtractionImagesPerSecond:0.0}");
    }

    private static float[] RawClassMean(BuiltAtlas atlas, int k)
    {
        var mean = new float[atlas.ActivationSize];
        int n = 0;
        for (int r = 0; r < atlas.RowCount; r++)
            if (atlas.ClassValues[r * atlas.ClassNames.Count + k] > 0)
            {
                for (int c = 0; c < mean.Length; c++)
                    mean[c] += atlas.Activations[r * atlas.ActivationSize + c];
                n++;
            }
        return mean.Select(v => v / n).ToArray();
    }

    [Fact]
    public void TheCommandWritesAGalleryAndJsonWithRegionsAndADirectionFileFindsWhatItsCellFinds()
    {
        var atlas = fixture.Atlas;
        var cell = atlas.Atlas.Level(8).Cells.OrderByDescending(c => c.Count).First();
        string images = Small(3);
        File.WriteAllText(Path.Combine(images, "cat", "broken.jpg"), "not a JPEG");
        string outDir = NewFolder("out");
        var (code, err) = AtlasTool.Run("search", "--atlas", fixture.AtlasFolder, "--cell", $"8:{cell.X},{cell.Y}", "--images", images, "--top", "5", "--out", outDir);
        Assert.True(code == 0, err);
        Assert.Contains("  search", err);
        Assert.Contains("the best 5 of 30 images", err);
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir, "search.json")));
        var results = doc.RootElement.GetProperty("results").EnumerateArray().ToArray();
        Assert.Equal(5, results.Length);
        Assert.Equal("cell", doc.RootElement.GetProperty("query").GetProperty("kind").GetString());
        // The unreadable file is skipped, said and listed.
        Assert.Contains("1 unreadable images skipped", err);
        Assert.Equal([Path.Combine("cat", "broken.jpg")], doc.RootElement.GetProperty("unreadable").EnumerateArray().Select(e => e.GetString()));
        string html = File.ReadAllText(Path.Combine(outDir, "index.html"));
        foreach (var r in results)
        {
            // A 32x32 CIFAR image on a 7x7 grid: the region is the position's seventh of the image, inside it.
            var region = r.GetProperty("region");
            int x = region.GetProperty("x").GetInt32(), y = region.GetProperty("y").GetInt32();
            int w = region.GetProperty("width").GetInt32(), h = region.GetProperty("height").GetInt32();
            int px = r.GetProperty("position").GetProperty("x").GetInt32(), py = r.GetProperty("position").GetProperty("y").GetInt32();
            Assert.InRange(w, 4, 6);
            Assert.InRange(h, 4, 6);
            Assert.True(x >= 0 && y >= 0 && x + w <= 32 && y + h <= 32);
            Assert.InRange(x, (int)(32.0 * px / 7) - 1, (int)(32.0 * px / 7) + 1);
            Assert.InRange(y, (int)(32.0 * py / 7) - 1, (int)(32.0 * py / 7) + 1);
            Assert.True(File.Exists(Path.Combine(outDir, r.GetProperty("copy").GetString()!)));
            Assert.Contains(r.GetProperty("copy").GetString()!, html);
        }
        Assert.Equal(5, html.Split("class=\"box\"").Length - 1);
        Assert.Empty(Directory.GetDirectories(fixture.Root, ".*.tmp"));

        // The same vector from a text file and from a .npy file finds the same images with the same scores.
        string text = Path.Combine(fixture.Root, $"direction-{Guid.NewGuid():N}.txt");
        File.WriteAllText(text, string.Join(" ", cell.MeanActivation.ToArray().Select(v => v.ToString("R", System.Globalization.CultureInfo.InvariantCulture))));
        string npy = Path.ChangeExtension(text, ".npy");
        NpyFormat.Write(npy, cell.MeanActivation.Span, cell.MeanActivation.Length);
        var collection = ImageFolder.Scan(images, skipUnreadable: true).Paths;
        foreach (var file in new[] { text, npy })
        {
            var r = atlas.SearchImages(ConceptQuery.FromFile(file), collection, 5);
            Assert.Equal(results.Select(e => e.GetProperty("path").GetString()), r.Matches.Select(m => m.ImagePath));
            Assert.Equal(results.Select(e => e.GetProperty("score").GetSingle()), r.Matches.Select(m => m.Score));
        }

        // An existing output folder is refused and left as it was.
        (code, err) = AtlasTool.Run("search", "--atlas", fixture.AtlasFolder, "--cell", $"8:{cell.X},{cell.Y}", "--images", images, "--out", outDir);
        Assert.Equal(1, code);
        Assert.Contains("already exists", err);
        Assert.Equal(5, Directory.GetFiles(Path.Combine(outDir, "images")).Length);
    }

    [Fact]
    public void RegionsFollowTheCenterCropOfAWideImage()
    {
        // A CIFAR image pasted twice side by side: 64x32, of which the network sees the centre 32x32.
        using var cifar = SkiaSharp.SKBitmap.Decode(SharedData.CifarImages(1)[0].Path);
        using var wide = new SkiaSharp.SKBitmap(64, 32);
        using (var canvas = new SkiaSharp.SKCanvas(wide))
        {
            canvas.DrawBitmap(cifar, 0, 0);
            canvas.DrawBitmap(cifar, 32, 0);
        }
        string file = Path.Combine(fixture.Root, $"wide-{Guid.NewGuid():N}.png");
        using (var stream = File.Create(file))
            wide.Encode(stream, SkiaSharp.SKEncodedImageFormat.Png, 100);
        Assert.Equal(new ImageRegion(16, 0, 5, 5), ConceptSearch.RegionOf(file, (224, 224), 7, 7, 0, 0));
        Assert.Equal(new ImageRegion(43, 27, 5, 5), ConceptSearch.RegionOf(file, (224, 224), 7, 7, 6, 6));
        Assert.Equal(new ImageRegion(29, 13, 6, 6), ConceptSearch.RegionOf(file, (224, 224), 7, 7, 3, 3));
    }

    [Fact]
    public void BadQueriesAndFoldersAreRefusedNamingWhatIsWrong()
    {
        var atlas = fixture.Atlas;
        string images = Small(1);
        string outDir = NewFolder("bad-out");
        (int, string) Search(params string[] query) =>
            AtlasTool.Run(["search", "--atlas", fixture.AtlasFolder, "--images", images, "--out", outDir, .. query]);

        var (code, err) = Search("--cell", "8:8,0");
        Assert.Equal(1, code);
        Assert.Contains("outside the 8x8 grid", err);
        (code, err) = Search("--cell", "5:0,0");
        Assert.Equal(1, code);
        Assert.Contains("not one of the atlas's grids (4,8,16)", err);
        var level = atlas.Atlas.Level(16);
        var empty = Enumerable.Range(0, 256).Select(i => (X: i % 16, Y: i / 16)).First(c => level.Find(c.X, c.Y) is null);
        (code, err) = Search("--cell", $"16:{empty.X},{empty.Y}");
        Assert.Equal(1, code);
        Assert.Contains($"Cell 16:{empty.X},{empty.Y} is empty", err);
        (code, err) = Search("--cell", "8-1-2");
        Assert.Equal(2, code);
        Assert.Contains("<grid>:<x>,<y>", err);
        (code, err) = Search("--class", "unicorn");
        Assert.Equal(1, code);
        Assert.Contains("Unknown class 'unicorn'", err);
        Assert.Contains("airplane", err);
        (code, err) = Search("--class", "cat", "--cell", "8:0,0");
        Assert.Equal(2, code);
        Assert.Contains("exactly one of", err);

        string shortFile = Path.Combine(fixture.Root, $"short-{Guid.NewGuid():N}.txt");
        File.WriteAllText(shortFile, string.Join(",", Enumerable.Repeat("0.5", 100)));
        (code, err) = Search("--direction", shortFile);
        Assert.Equal(1, code);
        Assert.Contains("has 100 values; layer 'ReLU393_Output_0' has 512 channels", err);
        string nanFile = Path.Combine(fixture.Root, $"nan-{Guid.NewGuid():N}.txt");
        File.WriteAllText(nanFile, string.Join(" ", Enumerable.Repeat("1", 511).Append("NaN")));
        (code, err) = Search("--direction", nanFile);
        Assert.Equal(1, code);
        Assert.Contains(Path.GetFileName(nanFile), err);
        Assert.Contains("value 512 is NaN", err);
        string wordFile = Path.Combine(fixture.Root, $"word-{Guid.NewGuid():N}.txt");
        File.WriteAllText(wordFile, "1 2 three");
        (code, err) = Search("--direction", wordFile);
        Assert.Equal(1, code);
        Assert.Contains("value 3 ('three') is not a number", err);

        string unreadable = NewFolder("unreadable");
        Directory.CreateDirectory(Path.Combine(unreadable, "cat"));
        File.WriteAllText(Path.Combine(unreadable, "cat", "broken.jpg"), "not a JPEG");
        (code, err) = AtlasTool.Run("search", "--atlas", fixture.AtlasFolder, "--class", "cat", "--images", unreadable, "--out", outDir);
        Assert.Equal(1, code);
        Assert.Contains("holds no readable images", err);
        Assert.Contains("broken.jpg", err);
        Assert.False(Directory.Exists(outDir));

        // A cancelled search writes nothing.
        using var cts = new CancellationTokenSource();
        cts.Cancel();
        Assert.ThrowsAny<OperationCanceledException>(() =>
            atlas.WriteSearch(ConceptQuery.ForClass(atlas, "cat"), ImageFolder.Scan(images), 5, outDir, cancellationToken: cts.Token));
        Assert.False(Directory.Exists(outDir));
    }
}
