using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.ML.ActivationAtlas.Building;
using Microsoft.ML.ActivationAtlas.Extraction;
using Microsoft.ML.ActivationAtlas.Inversion;
using Microsoft.ML.ActivationAtlas.Inversion.Objectives;
using Microsoft.ML.ActivationAtlas.Onnx;
using Microsoft.ML.ActivationAtlas.Tests.Infrastructure;
using Microsoft.ML.ActivationAtlas.Tests.Onnx;
using Xunit.Abstractions;

namespace Microsoft.ML.ActivationAtlas.Tests.Building;

/// <summary>
/// Atlases of a vision transformer's token layers beyond the single build, on the vit_tiny fixture (64 px, 8 px
/// patches, random weights) over CIFAR-10: a class atlas of a build whose layer is read with a non-default token
/// layout and whose icons are whitened inverts its cells with the build's layout and whitening (kept in build.json,
/// and an older build.json without them reads as before); linked atlases of token layers read every layer at the same
/// patch token, and a token layer with a layer of another grid is refused naming both.
/// </summary>
public sealed class VitSubsetAndLinkedAtlasTests(ITestOutputHelper output) : IDisposable
{
    private const string ChannelsFirstTensor = "tokens_nct";
    private const string PooledTensor = "patches_pooled";
    private static readonly FixtureData Vit = new("vit_tiny");
    private static readonly TokenLayout ChannelsFirst = new() { ChannelsFirst = true };
    private readonly string _root = Path.Combine(Path.GetTempPath(), "atlas-vit-subset-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_root))
            Directory.Delete(_root, true);
    }

    /// <summary>The fixture with two more layers: its block-3 tokens as [N, C, T] (a Transpose) and its 8x8 patch embedding max-pooled to 4x4.</summary>
    private ActivationModel Model()
    {
        var network = OnnxModelIO.Load(Vit.ModelPath);
        var builder = new OnnxGraphBuilder(network.Graph);
        builder.NodeWithOutputs("Transpose", [Vit.LayerTensor], [ChannelsFirstTensor], OnnxAttributes.Ints("perm", 0, 2, 1));
        builder.NodeWithOutputs("MaxPool", [PatchEmbedding()], [PooledTensor], OnnxAttributes.Ints("kernel_shape", 2, 2), OnnxAttributes.Ints("strides", 2, 2));
        Directory.CreateDirectory(_root);
        string path = Path.Combine(_root, "vit.onnx");
        File.WriteAllBytes(path, OnnxModelIO.ToBytes(network));
        return ActivationModel.FromFile(path, ImagePreprocessing.Identity);
    }

    /// <summary>The patch embedding: the fixture's one spatial layer, [N, 128, 8, 8].</summary>
    private static string PatchEmbedding() =>
        OnnxLayers.List(OnnxModelIO.Load(Vit.ModelPath)).First(l => l.Tokens is null && l.Shape.SequenceEqual(new long[] { 1, 128, 8, 8 })).Name;

    [Fact]
    public void AClassAtlasInvertsWithTheBuildsTokenLayoutAndWhitening()
    {
        // 14 images of each class: 140 rows, more than the layer's 128 channels the whitening is fitted over.
        string images = InvertedAtlasFixture.CopyImages(_root, "images", 14);
        var built = new MLContext(1).Atlas().Build(images, Path.Combine(_root, "atlas"), new AtlasBuildOptions
        {
            Model = Model(),
            Layer = ChannelsFirstTensor,
            Tokens = ChannelsFirst,
            IconWhitening = WhiteningKind.SecondMomentInverse,
            GridSizes = [2],
            IconSize = 32,
            IconSteps = 8,
            Seed = 5,
        });

        // build.json keeps both, and the subset's inversion takes them.
        var settings = JsonNode.Parse(File.ReadAllText(Path.Combine(built.Folder, AtlasFolder.SettingsFile)))!["IconSettings"]!;
        Assert.Equal("SecondMomentInverse", settings["Whitening"]!.GetValue<string>());
        Assert.True(settings["Tokens"]!["ChannelsFirst"]!.GetValue<bool>());
        var plan = built.SubsetIconPlan(null, [1, 2]).Plan!;
        Assert.Equal(WhiteningKind.SecondMomentInverse, plan.Inversion.Whitening);
        Assert.Equal(ChannelsFirst, plan.Inversion.Tokens);

        // The class atlas's one-cell icon is the whitened inversion of its rows' mean on the [N, C, T] layer: the same
        // icon as the renderer gives with the build's settings and a whitening fitted from the atlas's rows, not the
        // unwhitened one (and with the default [N, T, C] layout the layer would not even read as a token layer).
        string classDir = Path.Combine(_root, "class-ship");
        built.WriteClassAtlas("ship", classDir, gridSizes: [1, 2], icons: new SubsetIconOptions { IconBudget = Timeout.InfiniteTimeSpan });
        using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(classDir, "atlas.json")));
        var grids = json.RootElement.GetProperty("grids").EnumerateArray().ToArray();
        var coarse = grids.Single(g => g.GetProperty("size").GetInt32() == 1).GetProperty("cells").EnumerateArray().Single();
        Assert.Equal("inversion", coarse.GetProperty("icon").GetString());
        Assert.All(grids.Single(g => g.GetProperty("size").GetInt32() == 2).GetProperty("cells").EnumerateArray(),
            c => Assert.Equal("inversion", c.GetProperty("icon").GetString()));
        var rows = ClassAtlas.ClassFilter.SelectRows(built.ClassValues, built.ClassNames.Count, built.ClassIndex("ship"), ClassAtlas.ClassFilterKind.Rank, 2000);
        var mean = new float[built.ActivationSize];
        foreach (int r in rows)
            System.Numerics.Tensors.TensorPrimitives.Add(mean, built.Activations.AsSpan(r * mean.Length, mean.Length), mean);
        System.Numerics.Tensors.TensorPrimitives.Divide(mean, rows.Length, mean);
        double Fidelity(WhiteningKind whitening)
        {
            var inversion = built.SubsetIconPlan(null, [1]).Plan!.Inversion;
            inversion.Whitening = whitening;
            using var renderer = new MLContext(1).Transforms.CreateIconRenderer(inversion, built.Activations);
            return renderer.Render([mean])[0].Fidelity;
        }
        double stored = coarse.GetProperty("fidelity").GetDouble(), whitened = Fidelity(WhiteningKind.SecondMomentInverse), plain = Fidelity(WhiteningKind.None);
        output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"class atlas one-cell fidelity {stored:F4}; renderer whitened {whitened:F4}, unwhitened {plain:F4}"));
        Assert.True(Math.Abs(whitened - stored) < 1e-3, $"the class atlas's icon (fidelity {stored:F4}) is not the whitened inversion of its rows' mean ({whitened:F4})");
        Assert.True(Math.Abs(plain - stored) > 2e-3, $"the unwhitened icon's fidelity {plain:F4} is the class atlas's {stored:F4}: whitening made no difference here");

        // A build.json written before the layout and the whitening were kept: no whitening, the layer read as the
        // atlas's extraction reads it.
        string path = Path.Combine(built.Folder, AtlasFolder.SettingsFile);
        var old = JsonNode.Parse(File.ReadAllText(path))!;
        var icon = old["IconSettings"]!.AsObject();
        icon.Remove("Whitening");
        icon.Remove("Tokens");
        File.WriteAllText(path, old.ToJsonString());
        var reopened = new MLContext(1).Atlas().Open(built.Folder).SubsetIconPlan(null, [1]).Plan!;
        Assert.Equal(WhiteningKind.None, reopened.Inversion.Whitening);
        Assert.Equal(ChannelsFirst, reopened.Inversion.Tokens);
    }

    [Fact]
    public void LinkedAtlasesOfTokenLayersReadEveryLayerAtTheSamePatchToken()
    {
        string images = InvertedAtlasFixture.CopyImages(_root, "images", 4, "cat", "ship", "frog");
        var model = Model();
        string[] layers = ["encoder_layer_0", "encoder_layer_2", PatchEmbedding()];
        var options = new AtlasBuildOptions { Model = model, GridSizes = [2, 4], IconSize = 16, Seed = 3, Icons = AtlasIconKind.Examples };
        var linked = new MLContext(3).Atlas().BuildLayers(images, Path.Combine(_root, "linked"), layers, options);
        Assert.Equal(3, linked.Layers.Count);
        var links = JsonNode.Parse(File.ReadAllText(Path.Combine(linked.Folder, LinkedAtlas.LinksFile)))!;
        Assert.All(links["layers"]!.AsArray(), l => Assert.Equal((8, 8), (l!["height"]!.GetValue<int>(), l["width"]!.GetValue<int>())));
        var positions = links["positions"]!.AsArray().Select(p => p!.AsArray().Select(v => v!.GetValue<int>()).ToArray()).ToArray();
        int n = linked.RowCount;
        Assert.Equal(12, n);
        // The same patch on every layer, never on the grid's border, not always the same one.
        Assert.All(positions, p => Assert.Equal(positions[0], p));
        Assert.All(positions[0], v => Assert.InRange(v, 1, 6));
        Assert.True(Enumerable.Range(0, n).Select(r => (positions[0][2 * r], positions[0][2 * r + 1])).Distinct().Count() > 3);

        // Each layer's row is the layer's vector at that patch (its patch token, after the class token, on the token layers).
        var ml = new MLContext(1);
        var paths = linked.Layers[0].ImagePaths;
        var data = ml.Data.LoadFromEnumerable(paths.Select(p => new PathRow { ImagePath = p }));
        for (int l = 0; l < layers.Length; l++)
        {
            var atlas = linked.Layers[l];
            using var all = ml.Transforms.ExtractActivations(new ActivationExtractingEstimator.Options
            {
                Model = model,
                Layers = [atlas.LayerName],
                InputColumnName = nameof(PathRow.ImagePath),
                Sampling = ActivationSampling.AllPositions,
            }).Fit(data);
            var every = ml.Data.CreateEnumerable<ActivationRow>(all.Transform(data), reuseRowObject: false).ToArray();
            int c = atlas.ActivationSize;
            Assert.Equal(n * 64, every.Length);
            for (int r = 0; r < n; r++)
            {
                var expected = every[r * 64 + positions[l][2 * r] * 8 + positions[l][2 * r + 1]].Activations;
                var actual = atlas.Activations.AsSpan(r * c, c).ToArray();
                for (int k = 0; k < c; k++)
                    Assert.Equal(expected[k], actual[k], 1e-4f * (1 + Math.Abs(expected[k])));
            }
        }

        // A token layer with a layer of another grid: refused, naming both, before anything is written.
        string refused = Path.Combine(_root, "refused");
        var e = Assert.Throws<ArgumentException>(() => new MLContext(3).Atlas().BuildLayers(images, refused, ["encoder_layer_2", PooledTensor], options));
        output.WriteLine(e.Message);
        Assert.Contains("encoder_layer_2", e.Message, StringComparison.Ordinal);
        Assert.Contains($"'{PooledTensor}'", e.Message, StringComparison.Ordinal);
        Assert.Contains("4x4", e.Message, StringComparison.Ordinal);
        Assert.False(Directory.Exists(refused) || Directory.Exists(refused + ".partial"));
    }

    /// <summary>
    /// The command line passes the same through: linked token layers read with <c>--token-layout</c>, the refusal of a
    /// token layer with a layer of another grid (exit 1, both named, nothing written), and <c>--icon-whitening</c> into
    /// build.json's icon settings.
    /// </summary>
    [Fact]
    public void TheCommandLineLinksTokenLayersAndWhitensIcons()
    {
        string images = InvertedAtlasFixture.CopyImages(_root, "images", 4, "cat", "ship", "frog");
        string modelPath = Model().NetworkPath!;
        string[] common = ["--model", modelPath, "--preprocess", "identity", "--images", images, "--grids", "2", "--icon-size", "16"];
        string linked = Path.Combine(_root, "linked");
        var (code, error) = Cli.AtlasTool.Run(["build", "--layers", $"{ChannelsFirstTensor},{PatchEmbedding()}", "--token-layout", "nct", "--icons", "examples", "--out", linked, .. common]);
        Assert.True(code == 0, error);
        var links = JsonNode.Parse(File.ReadAllText(Path.Combine(linked, LinkedAtlas.LinksFile)))!;
        Assert.Equal(2, links["layers"]!.AsArray().Count);
        var positions = links["positions"]!.AsArray().Select(p => p!.AsArray().Select(v => v!.GetValue<int>()).ToArray()).ToArray();
        Assert.Equal(positions[0], positions[1]);

        string refused = Path.Combine(_root, "refused");
        (code, error) = Cli.AtlasTool.Run(["build", "--layers", $"encoder_layer_2,{PooledTensor}", "--icons", "examples", "--out", refused, .. common]);
        Assert.True(code == 1, $"exit {code}: {error}");
        Assert.Contains("encoder_layer_2", error, StringComparison.Ordinal);
        Assert.Contains(PooledTensor, error, StringComparison.Ordinal);
        Assert.False(Directory.Exists(refused) || Directory.Exists(refused + ".partial"));

        string whitened = Path.Combine(_root, "whitened");
        (code, error) = Cli.AtlasTool.Run(["build", "--layer", "encoder_layer_2", "--icon-whitening", "zca", "--icon-steps", "2", "--out", whitened, .. common]);
        Assert.True(code == 0, error);
        Assert.Equal("Zca", JsonNode.Parse(File.ReadAllText(Path.Combine(whitened, AtlasFolder.SettingsFile)))!["IconSettings"]!["Whitening"]!.GetValue<string>());
    }

    private sealed class PathRow
    {
        public string ImagePath { get; set; } = "";
    }

    private sealed class ActivationRow
    {
        [Data.ColumnName(AtlasColumnNames.Activation)]
        public float[] Activations { get; set; } = [];
    }
}
