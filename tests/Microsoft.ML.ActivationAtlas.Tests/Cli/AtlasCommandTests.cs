using System.Text.Json;
using Microsoft.ML.ActivationAtlas.Persistence;
using Microsoft.ML.Data;
using Microsoft.ML.ActivationAtlas.Tests.Infrastructure;

namespace Microsoft.ML.ActivationAtlas.Tests.Cli;

/// <summary>
/// The atlas verbs end to end on real CIFAR-10 images and the ImageNet ResNet18: build (and resume), histogram,
/// class, compare, and the bad-input messages.
/// </summary>
public sealed class AtlasCommandTests : IDisposable
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), "atlas-cli-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_root))
            Directory.Delete(_root, true);
    }

    /// <summary>A folder of <paramref name="perClass"/> images of each of some CIFAR-10 classes, in class sub-folders.</summary>
    private string CopyImages(string name, int perClass, int skip, params string[] classes)
    {
        string dir = Path.Combine(_root, name);
        foreach (var (path, label) in SharedData.CifarImages(skip + perClass).Where(x => classes.Length == 0 || classes.Contains(x.Label)))
        {
            int index = int.Parse(Path.GetFileNameWithoutExtension(path));
            if (index < skip)
                continue;
            Directory.CreateDirectory(Path.Combine(dir, label));
            File.Copy(path, Path.Combine(dir, label, Path.GetFileName(path)));
        }
        return dir;
    }

    [Fact]
    public async Task BuildResumeHistogramClassAndCompareOnCifarWithResNet18()
    {
        string images = CopyImages("images", 8, 0);
        string atlas = Path.Combine(_root, "atlas");
        string[] build = ["build", "--model", "resnet18", "--layer", "ReLU393_Output_0", "--images", images, "--out", atlas, "--grids", "5,10,20", "--png-grid", "10", "--icon-size", "32", "--icons", "examples"];
        var (code, err) = AtlasTool.Run(build);
        Assert.True(code == 0, err);
        foreach (var stage in new[] { "images", "activations", "umap", "grid", "icons", "outputs" })
            Assert.Contains($"  {stage}", err);
        foreach (var file in new[] { "atlas.png", "index.html", "atlas.json", "model.zip", "rows.json", "icons", "examples", "classes" })
            Assert.True(File.Exists(Path.Combine(atlas, file)) || Directory.Exists(Path.Combine(atlas, file)), file);
        Assert.False(Directory.Exists(atlas + ".partial"));

        using (var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(atlas, "atlas.json"))))
        {
            Assert.Equal("ReLU393_Output_0", doc.RootElement.GetProperty("layer").GetString());
            Assert.Equal(80, doc.RootElement.GetProperty("rows").GetInt32());
            Assert.Equal(512, doc.RootElement.GetProperty("activationSize").GetInt32());
            foreach (var g in doc.RootElement.GetProperty("grids").EnumerateArray())
                Assert.Equal(80, g.GetProperty("cells").EnumerateArray().Sum(c => c.GetProperty("n").GetInt32()));
            // Top classes are label shares: they sum to at most 1 and name CIFAR classes.
            var first = doc.RootElement.GetProperty("grids")[0].GetProperty("cells")[0].GetProperty("top");
            Assert.True(first.EnumerateArray().Sum(t => t.GetProperty("value").GetSingle()) <= 1.0001f);
            Assert.Contains(first[0].GetProperty("class").GetString(), Directory.GetDirectories(images).Select(Path.GetFileName));
        }

        // An existing output folder is refused and left alone.
        var before = Directory.GetFileSystemEntries(atlas, "*", SearchOption.AllDirectories).Length;
        (code, err) = AtlasTool.Run(build);
        Assert.Equal(1, code);
        Assert.Contains("already exists", err);
        Assert.Equal(before, Directory.GetFileSystemEntries(atlas, "*", SearchOption.AllDirectories).Length);

        // Resume: an interrupted build leaves <out>.partial; rerunning reuses its finished stages.
        Directory.Move(atlas, atlas + ".partial");
        File.Delete(Path.Combine(atlas + ".partial", "index.html"));
        var activationsTime = File.GetLastWriteTimeUtc(Path.Combine(atlas + ".partial", "cache", "activations.bin"));
        (code, err) = AtlasTool.Run(build);
        Assert.True(code == 0, err);
        Assert.Contains("activations  reused", err);
        Assert.Contains("umap         reused", err);
        Assert.Equal(activationsTime, File.GetLastWriteTimeUtc(Path.Combine(atlas, "cache", "activations.bin")));
        Assert.True(File.Exists(Path.Combine(atlas, "index.html")));

        // The viewer shows what atlas.json holds: each clicked cell's count, top classes and example images.
        using (var rowList = JsonDocument.Parse(File.ReadAllText(Path.Combine(atlas, "rows.json"))))
        {
            var paths = rowList.RootElement.GetProperty("Paths").EnumerateArray().Select(e => e.GetString()!).ToArray();
            await BuiltViewer.CheckAsync(atlas, r => Path.GetFileName(Path.GetDirectoryName(paths[r])) + "/" + Path.GetFileName(paths[r]));
        }

        // Histogram of ships vs cats not seen by the atlas.
        string ships = CopyImages("ships", 6, 100, "ship"), cats = CopyImages("cats", 6, 100, "cat");
        string hist = Path.Combine(_root, "hist");
        (code, err) = AtlasTool.Run("histogram", "--atlas", atlas, "--images", ships, "--compare", cats, "--out", hist, "--grid", "10");
        Assert.True(code == 0, err);
        foreach (var file in new[] { "histogram.png", "comparison.png", "histogram.json", "counts.json", "index.html" })
            Assert.True(File.Exists(Path.Combine(hist, file)), file);
        var saved = ActivationAtlas.Histogram.ConceptHistogram.Load(Path.Combine(hist, "counts.json"));
        using (var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(hist, "histogram.json"))))
        {
            Assert.Equal(6, doc.RootElement.GetProperty("total").GetInt32());
            Assert.Equal(6, doc.RootElement.GetProperty("compareTotal").GetInt32());
            foreach (var g in doc.RootElement.GetProperty("grids").EnumerateArray())
            {
                Assert.Equal(6, g.GetProperty("counts").EnumerateArray().Sum(c => c.GetInt32()));
                Assert.Equal(saved.Counts(g.GetProperty("size").GetInt32()).ToArray(), g.GetProperty("counts").EnumerateArray().Select(c => c.GetInt32()).ToArray());
            }
            // Six images a side cannot make a cell significant; every non-empty cell is tested.
            var cells = doc.RootElement.GetProperty("comparison").GetProperty("cells").EnumerateArray().ToArray();
            Assert.Equal(saved.Counts(10).ToArray().Zip(doc.RootElement.GetProperty("grids").EnumerateArray().First(g => g.GetProperty("size").GetInt32() == 10)
                .GetProperty("compareCounts").EnumerateArray().Select(c => c.GetInt32())).Count(p => p.First + p.Second > 0), cells.Length);
            Assert.All(cells, c => Assert.False(c.GetProperty("Significant").GetBoolean()));
        }

        // Class atlas and comparison; unknown classes are named with the known ones.
        (code, err) = AtlasTool.Run("class", "--atlas", atlas, "--class", "Ship", "--grids", "2,4,8");
        Assert.True(code == 0, err);
        Assert.True(File.Exists(Path.Combine(atlas, "class-ship", "atlas-class.png")));
        using (var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(atlas, "class-ship", "atlas.json"))))
            Assert.Equal(8, doc.RootElement.GetProperty("rows").GetInt32());
        await BuiltViewer.CheckAsync(Path.Combine(atlas, "class-ship"), null, c => Assert.StartsWith("ship/", c));
        (code, err) = AtlasTool.Run("class", "--atlas", atlas, "--class", "fireboat");
        Assert.Equal(1, code);
        Assert.Contains("Unknown class 'fireboat'", err);
        Assert.Contains("airplane", err);
        (code, err) = AtlasTool.Run("compare", "--atlas", atlas, "--classes", "cat,fireboat");
        Assert.Equal(1, code);
        Assert.Contains("Unknown class 'fireboat'", err);
        Assert.Contains("airplane", err);
        (code, err) = AtlasTool.Run("compare", "--atlas", atlas, "--classes", "cat,dog", "--grids", "2,4,8");
        Assert.True(code == 0, err);
        using (var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(atlas, "compare-cat-dog", "atlas.json"))))
        {
            Assert.Equal(16, doc.RootElement.GetProperty("rows").GetInt32());
            // x = class difference: cats on the right half, dogs on the left.
            foreach (var c in doc.RootElement.GetProperty("grids")[0].GetProperty("cells").EnumerateArray())
            {
                string top = c.GetProperty("top")[0].GetProperty("class").GetString()!;
                Assert.Equal(top == "cat" ? 1 : 0, c.GetProperty("x").GetInt32());
            }
        }
        // Its viewer: cats' cells on the right half of the grid on screen, dogs' on the left, and only their images.
        var compared = await BuiltViewer.CheckAsync(Path.Combine(atlas, "compare-cat-dog"), null, c => Assert.True(c.StartsWith("cat/") || c.StartsWith("dog/"), c));
        Assert.Contains(compared, c => c.TopClass == "cat");
        Assert.Contains(compared, c => c.TopClass == "dog");
        Assert.All(compared, c => Assert.True((c.TopClass == "cat") == (c.X >= c.GridSize / 2), $"cell ({c.X}, {c.Y}) of {c.GridSize}: top class {c.TopClass}"));
    }

    [Fact]
    public void UnseenImagesLandInTheSameCellsInAFreshProcessAndAmongTheirClass()
    {
        // An atlas of 15 images of each of four classes; 5 other images of each class it never saw.
        string[] classes = ["automobile", "bird", "frog", "ship"];
        string images = CopyImages("images", 15, 0, classes), unseen = CopyImages("unseen", 5, 100, classes);
        string atlas = Path.Combine(_root, "atlas");
        var (code, err) = AtlasTool.Run("build", "--model", "resnet18", "--layer", "ReLU393_Output_0", "--images", images, "--out", atlas,
            "--grids", "4,8,16", "--png-grid", "8", "--icon-size", "32", "--sampling", "mean", "--neighbors", "10", "--icons", "examples");
        Assert.True(code == 0, err);

        // The saved pipeline (model.zip), loaded here through the public API and in a fresh process by 'atlas histogram',
        // puts each new image into the same cells: new rows go through the persisted sampler and UMAP transform.
        var unseenPaths = Directory.GetFiles(unseen, "*.jpg", SearchOption.AllDirectories).Order(StringComparer.Ordinal).ToArray();
        var ml = new MLContext(seed: 1);
        var cellsHere = CellsOf(ml, ml.Model.LoadAtlas(Path.Combine(atlas, "model.zip"), out _), unseenPaths);
        string again = Path.Combine(_root, "again");
        (code, err) = AtlasTool.RunInNewProcess("histogram", "--atlas", atlas, "--images", unseen, "--out", again, "--grid", "8");
        Assert.True(code == 0, err);
        int[] sizes = [4, 8, 16];
        using (var reloaded = JsonDocument.Parse(File.ReadAllText(Path.Combine(again, "histogram.json"))))
        {
            Assert.Equal(sizes, reloaded.RootElement.GetProperty("grids").EnumerateArray().Select(g => g.GetProperty("size").GetInt32()));
            foreach (var g in reloaded.RootElement.GetProperty("grids").EnumerateArray())
            {
                int size = g.GetProperty("size").GetInt32(), level = Array.IndexOf(sizes, size);
                var expected = new int[size * size];
                foreach (var c in cellsHere)
                    expected[c[level]]++;
                Assert.Equal(expected, g.GetProperty("counts").EnumerateArray().Select(c => c.GetInt32()).ToArray());
            }
        }
        Assert.True(cellsHere.Select(c => c[2]).Distinct().Count() > 5, "the 20 new images spread over more than 5 cells of the 16x16 grid");

        // Most land in a cell whose top class (the label shares of the atlas's own images there) is their label.
        using var built = JsonDocument.Parse(File.ReadAllText(Path.Combine(atlas, "atlas.json")));
        var coarse = built.RootElement.GetProperty("grids").EnumerateArray().Single(g => g.GetProperty("size").GetInt32() == 4);
        var topClass = coarse.GetProperty("cells").EnumerateArray().ToDictionary(
            c => c.GetProperty("y").GetInt32() * 4 + c.GetProperty("x").GetInt32(), c => c.GetProperty("top")[0].GetProperty("class").GetString());
        int hits = Enumerable.Range(0, unseenPaths.Length).Count(i =>
            topClass.GetValueOrDefault(cellsHere[i][0]) == Path.GetFileName(Path.GetDirectoryName(unseenPaths[i])));
        // Chance (four classes) is 5 of 20; 9 or more happens by chance with probability 0.04.
        Assert.True(hits >= 9, $"only {hits} of 20 new images landed in a 4x4 cell whose top class is their label");
    }

    /// <summary>Each image's cells (one per grid, coarse to fine, y * size + x) from a loaded atlas pipeline.</summary>
    private static int[][] CellsOf(MLContext ml, ITransformer pipeline, string[] paths)
    {
        var data = pipeline.Transform(ml.Data.LoadFromEnumerable(paths.Select(p => new PathRow { ImagePath = p })));
        return data.GetColumn<VBuffer<int>>("GridCell").Select(v => v.DenseValues().ToArray()).ToArray();
    }

    private sealed class PathRow
    {
        public string ImagePath { get; set; } = "";
    }

    [Fact]
    public void BadInputGetsClearMessagesAndLeavesNothingBehind()
    {
        string empty = Path.Combine(_root, "empty");
        Directory.CreateDirectory(Path.Combine(empty, "cat"));
        File.WriteAllText(Path.Combine(empty, "cat", "notes.txt"), "no images here");
        string outDir = Path.Combine(_root, "out");
        var (code, err) = AtlasTool.Run("build", "--model", "resnet18", "--layer", "ReLU393_Output_0", "--images", empty, "--out", outDir);
        Assert.Equal(1, code);
        Assert.Contains("holds no images", err);
        Assert.False(Directory.Exists(outDir));
        Assert.False(Directory.Exists(outDir + ".partial"));

        string bad = CopyImages("bad", 2, 0, "cat");
        File.WriteAllText(Path.Combine(bad, "cat", "broken.jpg"), "this is not a JPEG");
        (code, err) = AtlasTool.Run("build", "--model", "resnet18", "--layer", "ReLU393_Output_0", "--images", bad, "--out", outDir);
        Assert.Equal(1, code);
        Assert.Contains("broken.jpg", err);
        Assert.Contains("not readable images", err);
        Assert.False(Directory.Exists(outDir) || Directory.Exists(outDir + ".partial"));

        (code, err) = AtlasTool.Run("build", "--model", "resnet18", "--layer", "ReLU393_Output_0", "--images", Path.Combine(_root, "missing"), "--out", outDir);
        Assert.Equal(1, code);
        Assert.Contains("does not exist", err);

        (code, err) = AtlasTool.Run("build", "--model", "resnet18", "--layer", "ReLU393_Output_0", "--images", bad, "--out", outDir, "--grids", "20,30");
        Assert.Equal(1, code);
        Assert.Contains("30", err);

        (code, err) = AtlasTool.Run("histogram", "--atlas", Path.Combine(_root, "bad"), "--images", bad, "--out", outDir);
        Assert.Equal(1, code);
        Assert.Contains("not an atlas folder", err);
    }
}

public sealed class AtlasHeadCommandTests : IDisposable
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), "atlas-cli-head-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_root))
            Directory.Delete(_root, true);
    }

    [Fact]
    public void BuildWithATrainedHeadStoresAttributionsThatFavourEachImagesOwnClass()
    {
        string images = Path.Combine(_root, "images");
        foreach (var (path, label) in SharedData.CifarImages(8).Where(x => x.Label is "airplane" or "frog"))
        {
            Directory.CreateDirectory(Path.Combine(images, label));
            File.Copy(path, Path.Combine(images, label, Path.GetFileName(path)));
        }
        string atlas = Path.Combine(_root, "atlas");
        var (code, err) = AtlasTool.Run("build", "--model", "resnet18", "--layer", "ReLU393_Output_0", "--images", images, "--out", atlas,
            "--head", "train", "--grids", "2,4", "--png-grid", "2", "--icon-size", "32", "--icons", "examples");
        Assert.True(code == 0, err);
        Assert.Contains("  attribution", err);
        using var settings = JsonDocument.Parse(File.ReadAllText(Path.Combine(atlas, "build.json")));
        Assert.Equal("attribution", settings.RootElement.GetProperty("ClassValues").GetString());
        Assert.Equal(["airplane", "frog"], settings.RootElement.GetProperty("ClassNames").EnumerateArray().Select(e => e.GetString()));

        var values = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(File.ReadAllBytes(Path.Combine(atlas, "cache", "classes.bin"))).ToArray();
        using var rows = JsonDocument.Parse(File.ReadAllText(Path.Combine(atlas, "rows.json")));
        var labels = rows.RootElement.GetProperty("Labels").EnumerateArray().Select(e => e.GetString()).ToArray();
        Assert.Equal(16 * 2, values.Length);
        Assert.All(values, v => Assert.True(float.IsFinite(v)));
        // h . d(logit_airplane - logit_frog)/dh is larger for airplanes than for frogs, on average.
        double Margin(string label) => Enumerable.Range(0, 16).Where(i => labels[i] == label).Average(i => values[2 * i] - values[2 * i + 1]);
        Assert.True(Margin("airplane") > Margin("frog"), $"airplane margin {Margin("airplane")}, frog margin {Margin("frog")}");

        (code, err) = AtlasTool.Run("compare", "--atlas", atlas, "--classes", "airplane,frog", "--grids", "2,4");
        Assert.True(code == 0, err);
        Assert.True(File.Exists(Path.Combine(atlas, "compare-airplane-frog", "index.html")));
    }
}
