using System.Text.Json;
using Microsoft.ML.ActivationAtlas.Onnx;
using Microsoft.ML.ActivationAtlas.Tests.Gradients;
using Microsoft.ML.ActivationAtlas.Tests.Infrastructure;

namespace Microsoft.ML.ActivationAtlas.Tests.Cli;

/// <summary>
/// The atlas verbs on a vision transformer (the vit_tiny fixture, random weights, so only the plumbing is checked):
/// build with attribution to an ONNX classifier at random patch tokens, and extract of the class token.
/// </summary>
public sealed class TokenLayerCommandTests : IDisposable
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), "atlas-vit-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_root))
            Directory.Delete(_root, true);
    }

    [Fact]
    public void BuildAndExtractOnAVisionTransformer()
    {
        string images = Path.Combine(_root, "images");
        foreach (var (path, label) in SharedData.CifarImages(12).Where(x => x.Label is "ship" or "frog"))
        {
            Directory.CreateDirectory(Path.Combine(images, label));
            File.Copy(path, Path.Combine(images, label, Path.GetFileName(path)));
        }
        // The fixture's head is zero-initialized: a seeded random one gives non-zero attributions.
        string model = Path.Combine(_root, "vit.onnx");
        var network = FixtureConformanceTests.WithRandomHead(OnnxModelIO.Load(Path.Combine(SharedData.GradientFixtures, "vit_tiny", "model.onnx")), "logits", seed: 3);
        File.WriteAllBytes(model, OnnxModelIO.ToBytes(network));

        string atlas = Path.Combine(_root, "atlas");
        var (code, err) = AtlasTool.Run("build", "--model", model, "--layer", "encoder_layer_2", "--images", images, "--out", atlas,
            "--head", model, "--grids", "2,4", "--png-grid", "2", "--icon-size", "32", "--icons", "examples");
        Assert.True(code == 0, err);
        Assert.Contains("  activations", err); // the ONNX head is attributed in the same network pass
        Assert.True(File.Exists(Path.Combine(atlas, "index.html")));
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(atlas, "atlas.json")));
        Assert.Equal(24, doc.RootElement.GetProperty("rows").GetInt32());
        Assert.Equal(128, doc.RootElement.GetProperty("activationSize").GetInt32());
        var values = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(File.ReadAllBytes(Path.Combine(atlas, "cache", "classes.bin"))).ToArray();
        Assert.Equal(24 * 100, values.Length);
        Assert.All(values, v => Assert.True(float.IsFinite(v)));

        string acts = Path.Combine(_root, "acts.npy");
        (code, err) = AtlasTool.Run("extract", "--model", model, "--layer", "encoder_layer_2", "--images", images, "--out", acts, "--sampling", "class-token");
        Assert.True(code == 0, err);
        Assert.Contains("tokens 1+8x8", err);
        var rows = File.ReadAllLines(Path.ChangeExtension(acts, ".rows.csv"));
        Assert.Equal(25, rows.Length); // header + 24 images
        Assert.All(rows.Skip(1), r => Assert.EndsWith(",-2,-2", r));
    }
}
