using System.Text.Json;
using Microsoft.ML.ActivationAtlas.Attacks;
using Microsoft.ML.ActivationAtlas.Building;
using Microsoft.ML.ActivationAtlas.Datasets;
using Microsoft.ML.ActivationAtlas.Extraction;
using Microsoft.ML.ActivationAtlas.Histogram;
using Microsoft.ML.ActivationAtlas.Tests.Cli;
using Microsoft.ML.ActivationAtlas.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Microsoft.ML.ActivationAtlas.Tests.Attacks;

/// <summary>
/// An atlas of 300 CIFAR-10 test images (the first 30 of each class) on ResNet18's last ReLU with a trained head,
/// a label-share atlas of 50 images (no head), and a disjoint folder to attack: images 900-915 of each class.
/// </summary>
public sealed class AttackAtlasFixture : IDisposable
{
    public AttackAtlasFixture()
    {
        Root = Path.Combine(Path.GetTempPath(), "atlas-attack-" + Guid.NewGuid().ToString("N"));
        Images = Path.Combine(Root, "attacked");
        foreach (var (path, label) in SharedData.CifarImages(916))
        {
            if (int.Parse(Path.GetFileNameWithoutExtension(path)) < 900)
                continue;
            Directory.CreateDirectory(Path.Combine(Images, label));
            File.Copy(path, Path.Combine(Images, label, Path.GetFileName(path)));
        }
        var ml = new MLContext(1);
        var all = ImageFolder.Scan(SharedData.Cifar10Test, perLabel: 30);
        Atlas = ml.Atlas().Build(all, Path.Combine(Root, "atlas"), new AtlasBuildOptions
        {
            Model = PretrainedModels.ResNet18,
            Layer = "ReLU393_Output_0",
            GridSizes = [4, 8],
            IconSize = 32,
            Icons = AtlasIconKind.Examples, // the whole-image check pastes a photograph of the target class
            Head = AtlasHeadKind.Train,
            Seed = 3,
        });
        var few = ImageFolder.Scan(SharedData.Cifar10Test, perLabel: 5);
        LabelShareAtlas = ml.Atlas().Build(few, Path.Combine(Root, "labels"), new AtlasBuildOptions
        {
            Model = PretrainedModels.ResNet18,
            Layer = "ReLU393_Output_0",
            GridSizes = [2, 4],
            IconSize = 16,
            Icons = AtlasIconKind.Examples,
            Seed = 3,
        });
    }

    public string Root { get; }

    public string Images { get; }

    public BuiltAtlas Atlas { get; }

    public BuiltAtlas LabelShareAtlas { get; }

    public void Dispose()
    {
        if (Directory.Exists(Root))
            Directory.Delete(Root, true);
    }
}

/// <summary>
/// Patch attacks on real CIFAR-10 images with ResNet18 and the atlas's trained head: a whole-image patch of the target
/// class flips nearly every image, noise patches rarely do, the outputs, the command line and the bad-input messages.
/// </summary>
public sealed class PatchAttackTests(AttackAtlasFixture fixture, ITestOutputHelper output) : IClassFixture<AttackAtlasFixture>
{
    private string NewFolder(string name) => Path.Combine(fixture.Root, name + "-" + Guid.NewGuid().ToString("N")[..8]);

    private ImageFolder Attacked => ImageFolder.Scan(fixture.Images);

    [Fact]
    public void WholeImagePatchOfTheTargetClassFlipsNearlyAlways()
    {
        var atlas = fixture.Atlas;
        int dog = atlas.ClassIndex("dog");
        // Cells drawn by an example image of a dog that the head itself calls a dog: pasted over the whole image, the
        // image the head sees is that dog, whatever cat it covers.
        var dogCells = atlas.Atlas.Level(8).Cells
            .Where(c => c.Count >= 3 && atlas.Labels[c.ExampleRows[0]] == "dog" && c.TopClasses[0].ClassIndex == dog)
            .OrderByDescending(c => c.TopClasses[0].Value)
            .Take(3)
            .Select(c => new AtlasCellId(8, c.X, c.Y))
            .ToArray();
        Assert.True(dogCells.Length >= 2, $"only {dogCells.Length} dog cells");
        var result = atlas.AttackWithPatches("cat", "dog", Attacked, new PatchAttackOptions
        {
            Cells = dogCells,
            Sizes = [1f, 0.25f],
            FixedSize = 1f,
            Corners = [PatchCorner.TopLeft],
            FixedCorner = PatchCorner.TopLeft,
        });
        Assert.Equal(16, result.Images.Count);
        foreach (var p in result.Patches)
        {
            output.WriteLine($"{p.Cell}: whole image {p.Fixed.ToTarget}, 0.25 {p.Placements[1].ToTarget}");
            Assert.True(p.Fixed.ToTarget.Rate >= 0.9, $"a whole-image dog patch {p.Cell} flipped only {p.Fixed.ToTarget}");
            Assert.Equal(p.Fixed.LeftSource.Count, p.Fixed.ToTarget.Count);
            // A quarter-side patch leaves most of the cat visible: the head's answers differ from image to image.
            Assert.True(p.Placements[1].ToTarget.Count < p.Fixed.ToTarget.Count, $"a 0.25 patch flipped as often as the whole image: {p.Placements[1].ToTarget}");
        }
        output.WriteLine($"clean: {result.CleanSource} cat, {result.CleanTarget} dog; noise {result.Noise.Fixed.ToTarget}");
    }

    [Fact]
    public void NoisePatchesFlipRarelyAndTheRunReproduces()
    {
        var atlas = fixture.Atlas;
        var options = new PatchAttackOptions { Patches = 2, Sizes = [0.2f, 0.3f], MaximumImages = 12 };
        var result = atlas.AttackWithPatches("automobile", "truck", Attacked, options);
        Assert.Equal(12, result.Images.Count);
        Assert.Equal(8, result.Noise.Placements.Count);
        // The cells taken push hardest towards truck, in order.
        Assert.True(result.Patches[0].TargetPush >= result.Patches[1].TargetPush);
        Assert.True(result.Patches[0].TargetPush > 0);
        var noiseFlips = result.Noise.Placements.Sum(p => p.ToTarget.Count);
        output.WriteLine($"clean {result.CleanTarget} truck, {result.CleanSource} automobile; noise: {noiseFlips} of {8 * 12}, fixed {result.Noise.Fixed.ToTarget}, best {result.Noise.Best.ToTarget}");
        foreach (var p in result.Patches)
            output.WriteLine($"{p.Cell} push {p.TargetPush:0.###}: fixed {p.Fixed.ToTarget} best {p.Best.ToTarget} at {p.Best.Placement}");
        foreach (var p in result.Noise.Placements)
            output.WriteLine($"noise at {p.Placement}: {p.ToTarget} truck, {p.LeftSource} not automobile");
        // The head of this small atlas is trained on 300 images and is fragile (a fifth of its answers change under a
        // noise patch), yet noise sends at most a quarter of the images to truck, where a whole-image patch of the
        // target sends all (WholeImagePatchOfTheTargetClassFlipsNearlyAlways).
        Assert.True(noiseFlips <= 96 / 4, $"noise flipped {noiseFlips} of 96 to truck; clean {result.CleanTarget}");

        var again = atlas.AttackWithPatches("automobile", "truck", Attacked, options);
        Assert.Equal(result.Predictions, again.Predictions);
        var reseeded = atlas.AttackWithPatches("automobile", "truck", Attacked, new PatchAttackOptions
        {
            Patches = 2, Sizes = [0.2f, 0.3f], MaximumImages = 12, Seed = 2,
        });
        // New noise, same icons: only the noise runs may change.
        for (int i = 0; i < 12; i++)
            for (int p = 0; p < 2; p++)
                for (int j = 0; j < 8; j++)
                    Assert.Equal(result.Predicted(i, p, j), reseeded.Predicted(i, p, j));
    }

    [Fact]
    public void AnExampleAtlasIsAttackedWithInvertedIconsOfThePastedCellsOnly()
    {
        // The fixture's atlas holds example images only; the attack inverts just the cells it pastes.
        var atlas = fixture.Atlas;
        Assert.Equal(AtlasIconKind.Examples, atlas.IconKind);
        PatchAttackOptions Options(AtlasIconKind? icons) => new()
        {
            Patches = 2, Sizes = [0.3f], Corners = [PatchCorner.BottomRight], MaximumImages = 3, Icons = icons, IconSteps = 6,
        };
        var examples = atlas.AttackWithPatches("cat", "dog", Attacked, Options(AtlasIconKind.Examples));
        var asHeld = atlas.AttackWithPatches("cat", "dog", Attacked, Options(null));
        var inverted = atlas.AttackWithPatches("cat", "dog", Attacked, Options(AtlasIconKind.Inversion));
        Assert.Equal(AtlasIconKind.Examples, examples.IconKind);
        Assert.Equal(AtlasIconKind.Examples, asHeld.IconKind);
        Assert.Equal(AtlasIconKind.Inversion, inverted.IconKind);
        var inversionSize = new ActivationAtlas.Inversion.FeatureInversionEstimator.Options().Size;
        for (int p = 0; p < 2; p++)
        {
            // The same cells, ranked the same way; an example-image icon against a feature-inversion icon of the inversion's size.
            Assert.Equal(examples.Patches[p].Cell, inverted.Patches[p].Cell);
            Assert.Equal(examples.Patches[p].Icon, asHeld.Patches[p].Icon);
            using var example = SkiaSharp.SKBitmap.Decode(examples.Patches[p].Icon);
            using var icon = SkiaSharp.SKBitmap.Decode(inverted.Patches[p].Icon);
            Assert.Equal(atlas.IconSize, example.Width);
            Assert.Equal(inversionSize, icon.Width);
            Assert.NotEqual(inverted.Patches[0].Icon, inverted.Patches[1].Icon);
        }
        // Seeded: the icons, and so every answer, reproduce.
        var again = atlas.AttackWithPatches("cat", "dog", Attacked, Options(AtlasIconKind.Inversion));
        Assert.Equal(inverted.Patches[0].Icon, again.Patches[0].Icon);
        Assert.Equal(inverted.Predictions, again.Predictions);
        Assert.Throws<ArgumentOutOfRangeException>(() => atlas.AttackWithPatches("cat", "dog", Attacked, new PatchAttackOptions { IconSteps = 0 }));
    }

    [Fact]
    public void WritesJsonHtmlAndContactSheetUnderATemporaryName()
    {
        string outDir = NewFolder("attack");
        var result = fixture.Atlas.WritePatchAttack("deer", "horse", Attacked, outDir, new PatchAttackOptions { Patches = 2, Sizes = [0.3f], MaximumImages = 6 });
        Assert.True(File.Exists(Path.Combine(outDir, "index.html")));
        Assert.True(File.Exists(Path.Combine(outDir, "patches", "00.png")));
        // Written as a hidden temporary sibling, renamed when complete: nothing of it is left.
        Assert.Empty(Directory.GetDirectories(fixture.Root, "." + Path.GetFileName(outDir) + ".*"));
        using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir, "attack.json")));
        Assert.Equal("deer", json.RootElement.GetProperty("source").GetString());
        Assert.Equal(6, json.RootElement.GetProperty("images").GetInt32());
        var first = json.RootElement.GetProperty("patches")[0];
        Assert.Equal(result.Patches[0].Fixed.ToTarget.Count, first.GetProperty("fixed").GetProperty("toTarget").GetProperty("count").GetInt32());
        Assert.Equal(4, first.GetProperty("placements").GetArrayLength());
        using var sheet = SkiaSharp.SKBitmap.Decode(Path.Combine(outDir, "contact.png"));
        // Two icon rows and the noise row, each with the icon and six example images.
        Assert.True(sheet.Width > 7 * 112 && sheet.Height > 3 * 112, $"contact sheet {sheet.Width}x{sheet.Height}");
        string html = File.ReadAllText(Path.Combine(outDir, "index.html"));
        Assert.Contains("noise (control)", html);
        Assert.Contains("contact.png", html);
    }

    [Fact]
    public void CancelledAttackWritesNothing()
    {
        string outDir = NewFolder("cancelled");
        using var cts = new CancellationTokenSource();
        cts.Cancel();
        Assert.ThrowsAny<OperationCanceledException>(() =>
            fixture.Atlas.WritePatchAttack("cat", "dog", Attacked, outDir, new PatchAttackOptions { MaximumImages = 2 }, cancellationToken: cts.Token));
        Assert.False(Directory.Exists(outDir));
        Assert.Empty(Directory.GetDirectories(fixture.Root, "*" + Path.GetFileName(outDir) + "*"));
    }

    [Fact]
    public void BadInputIsRefusedWithAClearMessage()
    {
        var atlas = fixture.Atlas;
        var unknown = Assert.Throws<ArgumentException>(() => atlas.AttackWithPatches("cat", "wolf", Attacked));
        Assert.Contains("'wolf'", unknown.Message);
        Assert.Contains("airplane, automobile, bird, cat, deer, dog, frog, horse, ship, truck", unknown.Message);

        var noHead = Assert.Throws<InvalidOperationException>(() => fixture.LabelShareAtlas.AttackWithPatches("cat", "dog", Attacked));
        Assert.Contains("no class values from a classifier", noHead.Message);
        Assert.Contains("--head train", noHead.Message);

        string dogsOnly = NewFolder("dogs");
        Directory.CreateDirectory(Path.Combine(dogsOnly, "dog"));
        File.Copy(Directory.GetFiles(Path.Combine(fixture.Images, "dog"))[0], Path.Combine(dogsOnly, "dog", "a.jpg"));
        var noCats = Assert.Throws<InvalidDataException>(() => atlas.AttackWithPatches("cat", "dog", ImageFolder.Scan(dogsOnly)));
        Assert.Contains("no images of 'cat'", noCats.Message);
        Assert.Contains("its sub-folders are: dog", noCats.Message);

        var empty = atlas.Atlas.Level(8);
        var hole = Enumerable.Range(0, 64).Select(i => (X: i % 8, Y: i / 8)).First(c => empty.Find(c.X, c.Y) is null);
        var emptyCell = Assert.Throws<ArgumentException>(() => atlas.AttackWithPatches("cat", "dog", Attacked,
            new PatchAttackOptions { Cells = [new AtlasCellId(8, hole.X, hole.Y)] }));
        Assert.Contains($"8:{hole.X},{hole.Y} is empty", emptyCell.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => atlas.AttackWithPatches("cat", "dog", Attacked, new PatchAttackOptions { Sizes = [0.2f], FixedSize = 0.3f }));

        string existing = NewFolder("existing");
        Directory.CreateDirectory(existing);
        var taken = Assert.Throws<IOException>(() => atlas.WritePatchAttack("cat", "dog", Attacked, existing));
        Assert.Contains("already exists", taken.Message);
    }

    [Fact]
    public void CommandLineWritesTheAttackAndNamesBadOptions()
    {
        string outDir = NewFolder("cli");
        var (code, error) = AtlasTool.Run("attack", "--atlas", fixture.Atlas.Folder, "--from", "cat", "--to", "dog", "--images", fixture.Images,
            "--patches", "1", "--sizes", "0.3", "--corners", "bottom-right,top-left", "--max-images", "4", "--icons", "inversion", "--icon-steps", "4", "--out", outDir);
        output.WriteLine(error);
        Assert.Equal(0, code);
        Assert.True(File.Exists(Path.Combine(outDir, "contact.png")));
        Assert.Contains("noise", error);
        using (var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir, "attack.json"))))
            Assert.Equal("Inversion", json.RootElement.GetProperty("icons").GetString());
        (code, error) = AtlasTool.Run("attack", "--atlas", fixture.Atlas.Folder, "--from", "cat", "--to", "dog", "--images", fixture.Images,
            "--icons", "photos", "--out", NewFolder("z"));
        Assert.NotEqual(0, code);
        Assert.Contains("--icons: 'photos'", error);

        (code, error) = AtlasTool.Run("attack", "--atlas", fixture.Atlas.Folder, "--from", "cat", "--to", "wolf", "--images", fixture.Images, "--out", NewFolder("x"));
        Assert.NotEqual(0, code);
        Assert.Contains("Unknown class 'wolf'", error);
        (code, error) = AtlasTool.Run("attack", "--atlas", fixture.Atlas.Folder, "--from", "cat", "--to", "dog", "--images", fixture.Images, "--out", outDir);
        Assert.NotEqual(0, code);
        Assert.Contains("already exists", error);
        (code, error) = AtlasTool.Run("attack", "--atlas", fixture.Atlas.Folder, "--from", "cat", "--to", "dog", "--images", fixture.Images,
            "--cells", "8:1", "--out", NewFolder("y"));
        Assert.NotEqual(0, code);
        Assert.Contains("--cells", error);
    }

    [Fact]
    public void WilsonIntervalMatchesPublishedValues()
    {
        // Newcombe (1998), table I: 0/10, 1/10 (95%), and a large sample close to the normal approximation.
        var (lo, hi) = CountStatistics.WilsonInterval(0, 10);
        Assert.Equal(0, lo, 4);
        Assert.Equal(0.2775, hi, 4);
        (lo, hi) = CountStatistics.WilsonInterval(1, 10);
        Assert.Equal(0.0179, lo, 4);
        Assert.Equal(0.4042, hi, 4);
        (lo, hi) = CountStatistics.WilsonInterval(400, 1000);
        Assert.Equal(0.4 - 1.96 * Math.Sqrt(0.24 / 1000), lo, 2);
        Assert.Equal(0.4 + 1.96 * Math.Sqrt(0.24 / 1000), hi, 2);
    }
}
