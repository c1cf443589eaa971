using System.Buffers.Binary;
using System.IO.Compression;
using System.Runtime.InteropServices;
using Microsoft.ML.ActivationAtlas.Attribution;
using Microsoft.ML.ActivationAtlas.Extraction;
using Microsoft.ML.ActivationAtlas.Onnx;
using Microsoft.ML.ActivationAtlas.Tests.Infrastructure;
using SkiaSharp;

namespace Microsoft.ML.ActivationAtlas.Tests.Cli;

/// <summary>
/// Mistakes on the <c>atlas build</c> command line: each gets an exit code (2 for usage, 1 for bad input), a message
/// naming the option, file or layer at fault, and leaves no output folder behind.
/// </summary>
public sealed class AtlasUsageTests : IDisposable
{
    private const string Layer = "ReLU393_Output_0";
    private readonly string _root = Path.Combine(Path.GetTempPath(), "atlas-cli-usage-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_root))
            Directory.Delete(_root, true);
    }

    /// <summary>The first <paramref name="count"/> CIFAR-10 cats in <c>&lt;root&gt;/&lt;name&gt;/cat</c>.</summary>
    private string Cats(string name, int count)
    {
        string dir = Path.Combine(_root, name, "cat");
        Directory.CreateDirectory(dir);
        foreach (var (path, _) in SharedData.CifarImages(count).Where(x => x.Label == "cat"))
            File.Copy(path, Path.Combine(dir, Path.GetFileName(path)));
        return Path.GetDirectoryName(dir)!;
    }

    private (int Code, string Error) Build(string images, string outDir, params string[] more) =>
        AtlasTool.Run(["build", "--model", "resnet18", "--layer", Layer, "--images", images, "--out", outDir, "--grids", "2,4", "--png-grid", "2", "--icon-size", "16", "--icons", "examples", .. more]);

    private static void Fails(int expectedCode, (int Code, string Error) result, params string[] mentions)
    {
        Assert.True(result.Code == expectedCode, $"exit {result.Code}, expected {expectedCode}: {result.Error}");
        foreach (var m in mentions)
            Assert.Contains(m, result.Error);
    }

    [Fact]
    public void OptionMistakesAreUsageErrors()
    {
        string images = Cats("images", 6), outDir = Path.Combine(_root, "out");
        Fails(2, AtlasTool.Run("build", "--model", "resnet18", "--images", images, "--out", outDir), "missing required option --layer", "usage: atlas build");
        Fails(2, Build(images, outDir, "--layr", "x"), "unknown option --layr");
        Fails(2, Build(images, outDir, "--samples", "abc"), "--samples", "'abc'");
        Fails(2, Build(images, outDir, "--min-dist", "small"), "--min-dist", "'small'");
        Fails(2, Build(images, outDir, "--sampling", "middle"), "--sampling", "'middle'", "random", "mean");
        Fails(2, Build(images, outDir, "--icons", "pretty"), "--icons", "'pretty'", "examples", "inversion");
        Fails(2, AtlasTool.Run("build", "--model", "resnet99", "--layer", Layer, "--images", images, "--out", outDir), "--model", "'resnet99'", "resnet18");
        Fails(2, AtlasTool.Run("frobnicate"), "unknown command 'frobnicate'");
        Assert.False(Directory.Exists(outDir) || Directory.Exists(outDir + ".partial"));
    }

    /// <summary>
    /// Numbers out of range on the icon (and other numeric) options of every verb name the command-line option, as
    /// the usage error it is, not the library's option behind it, and leave nothing behind.
    /// </summary>
    [Fact]
    public void OutOfRangeNumbersNameTheCommandLineOption()
    {
        string images = Cats("images", 6), outDir = Path.Combine(_root, "out"), atlas = Path.Combine(_root, "no-atlas");
        foreach (var (option, value, minimum) in new[]
        {
            ("--icon-steps", "0", "1"), ("--icon-steps", "-3", "1"), ("--icon-size", "0", "1"), ("--icon-size", "-16", "1"),
            ("--icon-min-count", "0", "1"), ("--min-count", "-1", "1"), ("--batch", "0", "1"), ("--page-rows", "0", "1"),
            ("--neighbors", "0", "1"), ("--samples", "-5", "0"), ("--threads", "-2", "0"),
        })
        {
            var result = Build(images, outDir, option, value);
            Fails(2, result, $"option {option}: {value} must be at least {minimum}", "usage: atlas build");
            Assert.DoesNotContain("AtlasBuildOptions", result.Error);
        }
        Fails(2, Build(images, outDir, "--icon-budget", "0"), "option --icon-budget: '0' is not positive");
        Fails(2, Build(images, outDir, "--icon-budget", "-10m"), "option --icon-budget: '-10m' is not positive");
        Fails(2, Build(images, outDir, "--icon-whitening", "pca"), "option --icon-whitening: 'pca'", "second-moment");
        Fails(2, AtlasTool.Run("build", "--model", "resnet18", "--layers", $"{Layer},ReLU347_Output_0", "--images", images, "--out", outDir, "--icon-steps", "0"),
            "option --icon-steps: 0 must be at least 1");
        Assert.False(Directory.Exists(outDir) || Directory.Exists(outDir + ".partial"));

        Fails(2, AtlasTool.Run("class", "--atlas", atlas, "--class", "cat", "--icon-budget", "0"), "option --icon-budget", "usage: atlas class");
        Fails(2, AtlasTool.Run("class", "--atlas", atlas, "--class", "cat", "--top", "0"), "option --top: 0 must be at least 1");
        Fails(2, AtlasTool.Run("class", "--atlas", atlas, "--class", "cat", "--neighbors", "-1"), "option --neighbors: -1 must be at least 1");
        Fails(2, AtlasTool.Run("class", "--atlas", atlas, "--class", "cat", "--threads", "-1"), "option --threads: -1 must be at least 0");
        Fails(2, AtlasTool.Run("compare", "--atlas", atlas, "--classes", "cat,dog", "--icon-budget", "0s"), "option --icon-budget", "usage: atlas compare");
        Fails(2, AtlasTool.Run("compare", "--atlas", atlas, "--classes", "cat,dog", "--perplexity", "0"), "option --perplexity: 0 must be positive");
        string[] attack = ["attack", "--atlas", atlas, "--from", "cat", "--to", "dog", "--images", images, "--out", outDir];
        Fails(2, AtlasTool.Run([.. attack, "--icon-steps", "0"]), "option --icon-steps: 0 must be at least 1", "usage: atlas attack");
        Fails(2, AtlasTool.Run([.. attack, "--patches", "0"]), "option --patches: 0 must be at least 1");
        Fails(2, AtlasTool.Run([.. attack, "--min-count", "0"]), "option --min-count: 0 must be at least 1");
        Fails(2, AtlasTool.Run([.. attack, "--max-images", "-1"]), "option --max-images: -1 must be at least 0");
        Fails(2, AtlasTool.Run([.. attack, "--batch", "0"]), "option --batch: 0 must be at least 1");
        string[] grid = ["grid", "--atlas", atlas, "--image", Directory.GetFiles(Path.Combine(images, "cat"))[0], "--out", outDir];
        Fails(2, AtlasTool.Run([.. grid, "--icon-steps", "0"]), "option --icon-steps: 0 must be at least 1", "usage: atlas grid");
        Fails(2, AtlasTool.Run([.. grid, "--icon-size", "4"]), "option --icon-size: 4 must be at least 8");
        Fails(2, AtlasTool.Run([.. grid, "--top", "0"]), "option --top: 0 must be at least 1");
        Assert.False(Directory.Exists(outDir) || Directory.Exists(outDir + ".partial"));
    }

    [Fact]
    public void BadLayerImagesAndSampleCountsAreNamed()
    {
        string images = Cats("images", 6), outDir = Path.Combine(_root, "out");
        Fails(1, Build(images, outDir, "--layer", "NoSuchLayer"), "no layer 'NoSuchLayer'", "atlas layers");
        Assert.False(Directory.Exists(outDir) || Directory.Exists(outDir + ".partial"), "a bad layer leaves no (partial) output folder");

        Fails(1, Build(Cats("two", 2), outDir), "at least 5 images", "has 2");
        Fails(1, Build(images, outDir, "--samples", "500"), "--samples 500", "6");
        Assert.False(Directory.Exists(outDir) || Directory.Exists(outDir + ".partial"));
    }

    [Fact]
    public void HeadsWithoutTheLayerOrWithMismatchedClassNamesAreNamed()
    {
        string images = Cats("images", 6), outDir = Path.Combine(_root, "out");
        // A classifier that does not contain ResNet18's layer.
        string other = Path.Combine(SharedData.GradientFixtures, "squeezenet1_1", "model.onnx");
        Fails(1, Build(images, outDir, "--head", other), $"--head '{other}'", $"no layer '{Layer}'");
        Assert.False(Directory.Exists(outDir));

        // ResNet18 with a 10-class head whose class_names metadata lists 3 names.
        var rng = new Random(4);
        var weights = Enumerable.Range(0, 10 * 512).Select(_ => (float)(rng.NextDouble() - 0.5)).ToArray();
        var head = ClassifierHead.Attach(PretrainedModels.ResNet18.Network, "Pooling395_Output_0", weights, new float[10],
            Enumerable.Range(0, 10).Select(i => $"c{i}").ToArray());
        ClassNames.Write(head, ["a", "b", "c"]);
        string headPath = Path.Combine(_root, "head.onnx");
        OnnxModelIO.Save(head, headPath);
        Fails(1, Build(images, Path.Combine(_root, "out2"), "--head", headPath), $"--head '{headPath}'", "3 class names", "10 logits");
        Assert.False(Directory.Exists(Path.Combine(_root, "out2")));
    }

    [Fact]
    public void SixteenBitImagesGiveTheActivationsOfTheirEightBitOriginals()
    {
        string images = Cats("images", 6);
        string deep = Path.Combine(_root, "deep", "cat");
        Directory.CreateDirectory(deep);
        foreach (var file in Directory.GetFiles(Path.Combine(images, "cat")))
        {
            using var bmp = SKBitmap.Decode(file);
            File.WriteAllBytes(Path.Combine(deep, Path.GetFileNameWithoutExtension(file) + ".png"), Png16(bmp));
        }
        string a = Path.Combine(_root, "a"), b = Path.Combine(_root, "b");
        var (code, err) = Build(images, a, "--sampling", "mean");
        Assert.True(code == 0, err);
        (code, err) = Build(Path.GetDirectoryName(deep)!, b, "--sampling", "mean");
        Assert.True(code == 0, err);
        var eight = MemoryMarshal.Cast<byte, float>(File.ReadAllBytes(Path.Combine(a, "cache", "activations.bin"))).ToArray();
        var sixteen = MemoryMarshal.Cast<byte, float>(File.ReadAllBytes(Path.Combine(b, "cache", "activations.bin"))).ToArray();
        Assert.Equal(6 * 512, sixteen.Length);
        float scale = eight.Max(Math.Abs);
        for (int i = 0; i < eight.Length; i++)
            Assert.True(Math.Abs(eight[i] - sixteen[i]) <= 1e-3f * scale, $"value {i}: 8-bit {eight[i]}, 16-bit {sixteen[i]}");
    }

    /// <summary>A 16-bit-per-channel RGB PNG of <paramref name="bmp"/> (each 8-bit value v stored as 257 v).</summary>
    private static byte[] Png16(SKBitmap bmp)
    {
        int w = bmp.Width, h = bmp.Height;
        var raw = new byte[h * (1 + 6 * w)];
        for (int y = 0, o = 0; y < h; y++)
        {
            raw[o++] = 0;
            for (int x = 0; x < w; x++)
            {
                var c = bmp.GetPixel(x, y);
                foreach (byte v in new[] { c.Red, c.Green, c.Blue })
                {
                    BinaryPrimitives.WriteUInt16BigEndian(raw.AsSpan(o), (ushort)(v * 257));
                    o += 2;
                }
            }
        }
        using var png = new MemoryStream();
        png.Write([0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A]);
        var header = new byte[13];
        BinaryPrimitives.WriteInt32BigEndian(header, w);
        BinaryPrimitives.WriteInt32BigEndian(header.AsSpan(4), h);
        header[8] = 16; // bit depth
        header[9] = 2;  // colour type RGB
        Chunk(png, "IHDR", header);
        using (var compressed = new MemoryStream())
        {
            using (var z = new ZLibStream(compressed, CompressionLevel.Fastest, leaveOpen: true))
                z.Write(raw);
            Chunk(png, "IDAT", compressed.ToArray());
        }
        Chunk(png, "IEND", []);
        return png.ToArray();
    }

    private static void Chunk(Stream s, string type, byte[] data)
    {
        Span<byte> len = stackalloc byte[4];
        BinaryPrimitives.WriteInt32BigEndian(len, data.Length);
        s.Write(len);
        var typed = System.Text.Encoding.ASCII.GetBytes(type).Concat(data).ToArray();
        s.Write(typed);
        BinaryPrimitives.WriteUInt32BigEndian(len, Crc32(typed));
        s.Write(len);
    }

    private static uint Crc32(byte[] bytes)
    {
        uint crc = 0xFFFFFFFF;
        foreach (byte b in bytes)
        {
            crc ^= b;
            for (int k = 0; k < 8; k++)
                crc = (crc & 1) != 0 ? (crc >> 1) ^ 0xEDB88320u : crc >> 1;
        }
        return ~crc;
    }
}
