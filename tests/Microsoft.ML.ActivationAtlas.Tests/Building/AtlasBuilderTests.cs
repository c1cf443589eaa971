using System.Diagnostics;
using System.Text.Json;
using Microsoft.ML.ActivationAtlas.Building;
using Microsoft.ML.ActivationAtlas.Extraction;
using Microsoft.ML.ActivationAtlas.Tests.Infrastructure;
using SkiaSharp;
using Xunit.Abstractions;

namespace Microsoft.ML.ActivationAtlas.Tests.Building;

/// <summary>
/// <c>mlContext.Atlas()</c> end to end on CIFAR-10 images and ResNet18: byte-identical seeded builds, a built folder
/// reopened with its settings, unreadable files skipped and listed, a damaged model file named, and an extraction
/// killed mid-way (a real <c>kill -9</c> of a child process) resumed from its last complete page.
/// </summary>
public sealed class AtlasBuilderTests(ITestOutputHelper output) : IDisposable
{
    private const string Layer = "ReLU393_Output_0";
    private readonly string _root = Path.Combine(Path.GetTempPath(), "atlas-builder-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_root))
            Directory.Delete(_root, true);
    }

    /// <summary>A folder of <paramref name="perClass"/> images of each CIFAR-10 class (of <paramref name="classes"/> when given), in class sub-folders.</summary>
    private string CopyImages(string name, int perClass, params string[] classes) => InvertedAtlasFixture.CopyImages(_root, name, perClass, classes);

    private static AtlasBuildOptions Options() => new()
    {
        Model = PretrainedModels.ResNet18,
        Layer = Layer,
        GridSizes = [4, 8, 16],
        IconSize = 24,
        Icons = AtlasIconKind.Examples,
        Seed = 5,
    };

    /// <summary>Every file under a folder (relative path) with its bytes.</summary>
    private static SortedDictionary<string, byte[]> Files(string folder) =>
        new(Directory.GetFiles(folder, "*", SearchOption.AllDirectories).ToDictionary(f => Path.GetRelativePath(folder, f), File.ReadAllBytes), StringComparer.Ordinal);

    private static void AssertSameFiles(string expected, string actual)
    {
        var a = Files(expected);
        var b = Files(actual);
        Assert.Equal(a.Keys, b.Keys);
        foreach (var (name, bytes) in a)
            Assert.True(bytes.AsSpan().SequenceEqual(b[name]), $"{name} differs between {expected} and {actual}");
    }

    [Fact]
    public void ASeededBuildGivesByteIdenticalOutputsAndReopensWithItsSettings()
    {
        string images = CopyImages("images", 4);
        var options = Options();
        options.Head = AtlasHeadKind.Train;
        options.MinimumCount = 2;
        var stages = new List<AtlasBuildProgress>();
        var first = new MLContext(1).Atlas().Build(images, Path.Combine(_root, "first"), options, new SyncProgress<AtlasBuildProgress>(stages.Add));
        // Another context (its own seed) and another process-wide state: the build's seed decides.
        new MLContext(2).Atlas().Build(images, Path.Combine(_root, "second"), options);
        AssertSameFiles(Path.Combine(_root, "first"), Path.Combine(_root, "second"));

        Assert.Equal(["images", "activations", "head", "attribution", "umap", "grid", "icons", "outputs"],
            stages.Where(s => s.Status == AtlasStageStatus.Done).Select(s => s.Stage));
        Assert.Contains(stages, s => s.Stage == "attribution" && s.Status == AtlasStageStatus.Done && s.Note!.Contains("head's weights"));

        // Reopened: the minimum count, the icon size and the grids it was built with.
        var reopened = new MLContext(7).Atlas().Open(Path.Combine(_root, "first"));
        Assert.Equal([4, 8, 16], reopened.GridSizes);
        Assert.Equal(2, reopened.MinimumCount);
        Assert.Equal(40, reopened.RowCount);
        Assert.Equal("attribution", reopened.ClassValueName);
        using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(_root, "first", "atlas.json")));
        foreach (var level in reopened.Atlas.Levels)
        {
            var built = json.RootElement.GetProperty("grids").EnumerateArray().Single(g => g.GetProperty("size").GetInt32() == level.GridSize)
                .GetProperty("cells").EnumerateArray().Select(c => (c.GetProperty("x").GetInt32(), c.GetProperty("y").GetInt32(), c.GetProperty("n").GetInt32())).ToArray();
            Assert.Equal(built.OrderBy(c => c), level.Cells.Select(c => (c.X, c.Y, c.Count)).OrderBy(c => c));
            Assert.All(level.Cells, c => Assert.True(c.Count >= 2));
        }
        Assert.True(reopened.Atlas.Levels[^1].Cells.Sum(c => c.Count) < 40, "cells below the minimum count are left out");
        var cell = reopened.Atlas.Levels[0].Cells[0];
        using var icon = SKBitmap.Decode(reopened.Icons.Get(4, cell.X, cell.Y));
        Assert.Equal(24, icon.Width);
        // Its pipeline puts the atlas's own images into the same cells.
        var histogram = reopened.ConceptHistogram(reopened.ImagePaths);
        Assert.Equal(40, histogram.Total);
    }

    [Fact]
    public void InvertedIconsAreStoredAndReopenedWithTheAtlas()
    {
        string images = CopyImages("images", 8, "cat", "ship");
        var options = Options();
        options.GridSizes = [2, 4];
        options.Icons = AtlasIconKind.Inversion;
        options.IconGridSize = 2;
        options.IconSteps = 4;
        options.IconSize = 32;
        var built = new MLContext(1).Atlas().Build(images, Path.Combine(_root, "atlas"), options);
        Assert.Equal(AtlasIconKind.Inversion, built.IconKind);
        Assert.Equal(2, built.IconGridSize);
        var examples = ActivationAtlas.Rendering.AtlasIcons.FromNearestExamples(built.Atlas, row => built.ImagePaths[row], 32);
        foreach (var cell in built.Atlas.Level(2).Cells)
        {
            var stored = File.ReadAllBytes(Path.Combine(_root, "atlas", "cache", "icons-2", $"{cell.X}_{cell.Y}.png"));
            Assert.Equal(stored, built.Icons.Get(2, cell.X, cell.Y));
            Assert.NotEqual(examples.Get(2, cell.X, cell.Y), built.Icons.Get(2, cell.X, cell.Y));
        }
        // The finer grid, beyond IconGridSize, keeps its example icons.
        var fine = built.Atlas.Level(4).Cells[0];
        Assert.Equal(examples.Get(4, fine.X, fine.Y), built.Icons.Get(4, fine.X, fine.Y));
    }

    [Fact]
    public void UnreadableFilesAreRefusedByDefaultOrSkippedAndListed()
    {
        string images = CopyImages("images", 3, "cat", "dog");
        File.WriteAllText(Path.Combine(images, "cat", "broken.jpg"), "this is not a JPEG");
        var options = Options();
        var e = Assert.Throws<InvalidDataException>(() => new MLContext(1).Atlas().Build(images, Path.Combine(_root, "strict"), options));
        Assert.Contains(Path.Combine("cat", "broken.jpg"), e.Message);
        Assert.False(Directory.Exists(Path.Combine(_root, "strict")) || Directory.Exists(Path.Combine(_root, "strict.partial")));

        options.SkipUnreadableImages = true;
        var built = new MLContext(1).Atlas().Build(images, Path.Combine(_root, "skipping"), options);
        Assert.Equal(6, built.RowCount);
        Assert.Equal([Path.Combine("cat", "broken.jpg")], built.SkippedImages);
        using var settings = JsonDocument.Parse(File.ReadAllText(Path.Combine(_root, "skipping", "build.json")));
        Assert.Equal(1, settings.RootElement.GetProperty("SkippedCount").GetInt32());

        // A damaged model file is named in the error.
        string model = Path.Combine(_root, "skipping", "model.zip");
        var bytes = File.ReadAllBytes(model);
        for (int i = bytes.Length / 3; i < bytes.Length / 3 + 256; i++)
            bytes[i] ^= 0x5A;
        File.WriteAllBytes(model, bytes);
        var damaged = new MLContext(1).Atlas().Open(Path.Combine(_root, "skipping"));
        var error = Assert.Throws<InvalidDataException>(() => damaged.Pipeline);
        Assert.Contains("model.zip", error.Message);
    }

    [Fact]
    public void AKilledExtractionResumesFromItsLastCompletePageWithIdenticalOutputs()
    {
        string images = CopyImages("images", 6);
        string[] Args(string outDir) => ["build", "--model", "resnet18", "--layer", Layer, "--images", images, "--out", outDir,
            "--grids", "4,8", "--icon-size", "24", "--page-rows", "6", "--batch", "2", "--head", "train", "--icons", "examples"];

        var clock = Stopwatch.StartNew();
        string whole = Path.Combine(_root, "whole");
        var (code, err) = Cli.AtlasTool.RunInNewProcess(Args(whole));
        Assert.True(code == 0, err);
        var uninterrupted = clock.Elapsed;

        // The same build, killed once three pages of activations are stored.
        string resumed = Path.Combine(_root, "resumed");
        string cache = resumed + ".partial/cache";
        var start = new ProcessStartInfo("dotnet") { UseShellExecute = false, RedirectStandardError = true, RedirectStandardOutput = true };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "atlas.dll"));
        foreach (var a in Args(resumed))
            start.ArgumentList.Add(a);
        using (var child = Process.Start(start)!)
        {
            _ = child.StandardError.ReadToEndAsync();
            _ = child.StandardOutput.ReadToEndAsync();
            var wait = Stopwatch.StartNew();
            while (!File.Exists(Path.Combine(cache, "activations.page00002.json")) && !child.HasExited && wait.Elapsed < TimeSpan.FromMinutes(4))
                Thread.Sleep(20);
            Assert.False(child.HasExited, "the build finished before it could be killed");
            Process.Start("kill", ["-9", child.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)])!.WaitForExit();
            child.WaitForExit();
        }
        var stored = Directory.GetFiles(cache, "activations.page*.json").Length;
        Assert.InRange(stored, 3, 9);
        Assert.False(File.Exists(Path.Combine(cache, "activations.json")));

        clock.Restart();
        (code, err) = Cli.AtlasTool.RunInNewProcess(Args(resumed));
        Assert.True(code == 0, err);
        var rerun = clock.Elapsed;
        output.WriteLine($"uninterrupted {uninterrupted.TotalSeconds:F1} s; rerun after the kill with {stored} of 10 pages stored {rerun.TotalSeconds:F1} s (under load)");
        Assert.Empty(Directory.GetFiles(Path.Combine(resumed, "cache"), "*.page*"));
        AssertSameFiles(whole, resumed);
    }
}
