using System.Runtime.InteropServices;
using Microsoft.ML.ActivationAtlas.Attribution;
using Microsoft.ML.ActivationAtlas.Building;
using Microsoft.ML.ActivationAtlas.Tests.Extraction;
using Microsoft.ML.ActivationAtlas.Onnx;
using Microsoft.ML.ActivationAtlas.Tests.Infrastructure;
using Microsoft.ML.ActivationAtlas.Tests.Onnx;
using Microsoft.ML.OnnxRuntime;

namespace Microsoft.ML.ActivationAtlas.Tests.Cli;

/// <summary>
/// Token layers on the command line (the vit_tiny fixture, random weights, so the plumbing is checked): the token
/// layout options of the verbs that take a layer, with an [N, C, T] token tensor made by appending a Transpose to the
/// fixture's [N, T, C] block output; a trained linear head on a token layer (its graph reads the mean of the patch
/// tokens, it fits the CIFAR-10 labels of its training images better than chance, the attributions are its closed
/// form and agree with the tangent graph at each row's patch token); and the errors for layouts that do not fit the layer, negative counts and unknown layouts.
/// </summary>
public sealed class TokenLayoutCommandTests : IDisposable
{
    private const string ChannelsFirstTensor = "tokens_nct";
    private static readonly FixtureData Vit = new("vit_tiny");
    private readonly string _root = Path.Combine(Path.GetTempPath(), "atlas-vit-layout-" + Guid.NewGuid().ToString("N"));

    public TokenLayoutCommandTests() => Directory.CreateDirectory(_root);

    public void Dispose()
    {
        if (Directory.Exists(_root))
            Directory.Delete(_root, true);
    }

    /// <summary>The fixture with its block-3 tokens also as [N, C, T]: a Transpose appended to the token tensor.</summary>
    private string ChannelsFirstModel()
    {
        var network = OnnxModelIO.Load(Vit.ModelPath);
        new OnnxGraphBuilder(network.Graph).NodeWithOutputs("Transpose", [Vit.LayerTensor], [ChannelsFirstTensor], OnnxAttributes.Ints("perm", 0, 2, 1));
        string path = Path.Combine(_root, "vit-nct.onnx");
        File.WriteAllBytes(path, OnnxModelIO.ToBytes(network));
        return path;
    }

    private string Images(int perClass, params string[] classes)
    {
        string images = Path.Combine(_root, "images");
        foreach (var (path, label) in SharedData.CifarImages(perClass).Where(x => classes.Contains(x.Label)))
        {
            Directory.CreateDirectory(Path.Combine(images, label));
            File.Copy(path, Path.Combine(images, label, Path.GetFileName(path)), overwrite: true);
        }
        return images;
    }

    private sealed class TokenRow
    {
        public string ImagePath { get; set; } = "";

        [Data.VectorType(2)]
        public int[] Position { get; set; } = [];
    }

    private static float[] Floats(string file) => MemoryMarshal.Cast<byte, float>(File.ReadAllBytes(file)).ToArray();

    [Fact]
    public void LayersAndExtractReadAChannelsFirstTokenLayer()
    {
        string model = ChannelsFirstModel();
        var (code, output) = AtlasTool.RunWithOutput("layers", "--model", model, "--token-layout", "nct");
        Assert.True(code == 0, output);
        Assert.Contains("token layout [N, C, T], 1 class token, 0 register tokens", output);
        var line = Assert.Single(output.Split('\n'), l => l.StartsWith(ChannelsFirstTensor + " ", StringComparison.Ordinal));
        Assert.Contains("[128, 65] tokens 1+8x8", line);
        // The [N, T, C] block output is no token layer when read as [N, C, T] (128 - 1 tokens is no square).
        Assert.DoesNotContain(output.Split('\n'), l => l.StartsWith(Vit.LayerTensor + " ", StringComparison.Ordinal));

        (code, output) = AtlasTool.RunWithOutput("layers", "--model", model);
        Assert.True(code == 0, output);
        Assert.Contains("token layout [N, T, C], 1 class token, 0 register tokens", output);
        Assert.DoesNotContain(output.Split('\n'), l => l.StartsWith(ChannelsFirstTensor + " ", StringComparison.Ordinal));
        Assert.Contains(output.Split('\n'), l => l.StartsWith(Vit.LayerTensor + " ", StringComparison.Ordinal) && l.Contains("[65, 128] tokens 1+8x8"));

        // Extracting the [N, C, T] tensor gives the [N, T, C] tensor's values: random patch tokens and class tokens.
        string images = Images(4, "cat", "truck");
        foreach (var sampling in new[] { "random", "class-token" })
        {
            string a = Path.Combine(_root, $"ntc-{sampling}.npy"), b = Path.Combine(_root, $"nct-{sampling}.npy");
            (code, output) = AtlasTool.Run("extract", "--model", model, "--layer", Vit.LayerTensor, "--images", images, "--out", a, "--sampling", sampling);
            Assert.True(code == 0, output);
            (code, output) = AtlasTool.Run("extract", "--model", model, "--layer", ChannelsFirstTensor, "--token-layout", "nct", "--images", images, "--out", b, "--sampling", sampling);
            Assert.True(code == 0, output);
            Assert.Contains("[128, 65] tokens 1+8x8", output);
            Assert.Equal(File.ReadAllBytes(a), File.ReadAllBytes(b));
            Assert.Equal(File.ReadAllLines(Path.ChangeExtension(a, ".rows.csv")), File.ReadAllLines(Path.ChangeExtension(b, ".rows.csv")));
        }
    }

    [Fact]
    public void LayoutsThatDoNotFitTheLayerAreClearErrors()
    {
        string images = Images(3, "ship", "frog");
        string Out(string name) => Path.Combine(_root, name + ".npy");
        // [N, T, C] read as [N, C, T]: the option and the layer are named, and why it does not fit.
        var (code, err) = AtlasTool.Run("extract", "--model", Vit.ModelPath, "--layer", Vit.LayerTensor, "--images", images, "--out", Out("a"), "--token-layout", "nct");
        Assert.Equal(1, code);
        Assert.Contains("--token-layout", err);
        Assert.Contains($"'{Vit.LayerTensor}'", err);
        Assert.Contains("127 patch tokens, not a square grid", err);
        // By its friendly name, which only a layer that fits the layout has: the layout is named as the likely cause.
        (code, err) = AtlasTool.Run("extract", "--model", Vit.ModelPath, "--layer", "encoder_layer_2", "--images", images, "--out", Out("a"), "--token-layout", "nct");
        Assert.Equal(1, code);
        Assert.Contains("--token-layout", err);
        Assert.Contains("no layer 'encoder_layer_2'", err);
        Assert.Contains("token layout [N, C, T], 1 class token, 0 register tokens", err);
        // More class + register tokens than the 65 tokens.
        (code, err) = AtlasTool.Run("extract", "--model", Vit.ModelPath, "--layer", Vit.LayerTensor, "--images", images, "--out", Out("b"), "--class-tokens", "40", "--register-tokens", "30");
        Assert.Equal(1, code);
        Assert.Contains("--class-tokens", err);
        Assert.Contains("40 class + 30 register tokens leave no patch token", err);
        // Two register tokens leave 62 patches: no square grid.
        (code, err) = AtlasTool.Run("build", "--model", Vit.ModelPath, "--layer", Vit.LayerTensor, "--images", images, "--out", Path.Combine(_root, "atlas-bad"),
            "--register-tokens", "2", "--icons", "examples", "--grids", "2");
        Assert.Equal(1, code);
        Assert.Contains("62 patch tokens, not a square grid", err);
        Assert.False(Directory.Exists(Path.Combine(_root, "atlas-bad")));
        // Negative counts and unknown layouts are usage errors (exit code 2) naming the option.
        (code, err) = AtlasTool.Run("layers", "--model", Vit.ModelPath, "--class-tokens", "-1");
        Assert.Equal(2, code);
        Assert.Contains("option --class-tokens: -1 is negative", err);
        (code, err) = AtlasTool.Run("grid", "--model", Vit.ModelPath, "--layer", "encoder_layer_2", "--image", SharedData.CifarImages(1)[0].Path,
            "--out", Path.Combine(_root, "grid"), "--register-tokens", "-4");
        Assert.Equal(2, code);
        Assert.Contains("option --register-tokens: -4 is negative", err);
        (code, err) = AtlasTool.Run("extract", "--model", Vit.ModelPath, "--layer", "encoder_layer_2", "--images", images, "--out", Out("c"), "--token-layout", "tnc");
        Assert.Equal(2, code);
        Assert.Contains("option --token-layout: 'tnc'", err);
        Assert.False(File.Exists(Out("a")) || File.Exists(Out("b")) || File.Exists(Out("c")));
    }

    [Fact]
    public void TrainedHeadOnTokenLayersFitsTheLabelsAndChannelsFirstGivesTheSameAtlas()
    {
        string[] classes = ["airplane", "frog", "ship", "truck"];
        string images = Images(10, classes);
        string ntc = Path.Combine(_root, "atlas-ntc"), nct = Path.Combine(_root, "atlas-nct");
        string[] common = ["--images", images, "--head", "train", "--icons", "examples", "--grids", "2,4", "--png-grid", "2", "--icon-size", "32", "--neighbors", "8"];
        var (code, err) = AtlasTool.Run(["build", "--model", Vit.ModelPath, "--layer", "encoder_layer_2", "--out", ntc, .. common]);
        Assert.True(code == 0, err);
        Assert.Contains("  head", err);
        (code, err) = AtlasTool.Run(["build", "--model", ChannelsFirstModel(), "--layer", ChannelsFirstTensor, "--token-layout", "nct", "--out", nct, .. common]);
        Assert.True(code == 0, err);

        var ml = new MLContext(seed: 1);
        var atlas = ml.Atlas().Open(ntc);
        Assert.Equal(40, atlas.RowCount);
        Assert.Equal(128, atlas.ActivationSize);
        Assert.Equal("attribution", atlas.ClassValueName);
        Assert.Equal(classes, atlas.ClassNames);

        // The head learnt from each image's mean of its 64 patch tokens; it fits its training labels better than chance
        // (1/4, 10 of 40; 20 or more by chance has a probability below 1e-3).
        var head = atlas.TrainedHead();
        var means = Floats(Path.Combine(ntc, AtlasFolder.CacheFolder, "head-features.bin"));
        Assert.Equal(40 * 128, means.Length);
        int correct = Enumerable.Range(0, 40).Count(i => head.ClassNames[head.Predict(means.AsSpan(i * 128, 128))] == atlas.Labels[i]);
        Assert.True(correct >= 20, $"{correct} of 40 training images classified right");

        // Every class value is the closed-form attribution of the row's patch token, (W_k . h) / 64.
        var values = atlas.ClassValues;
        for (int r = 0; r < 40; r++)
            for (int k = 0; k < classes.Length; k++)
            {
                float expected = System.Numerics.Tensors.TensorPrimitives.Dot(head.Weights.AsSpan(k * 128, 128), atlas.Activations.AsSpan(r * 128, 128)) / 64f;
                Assert.Equal(expected, values[r * classes.Length + k], 1e-4f * Math.Max(1f, Math.Abs(expected)));
            }

        // The attached graph reads the mean of the patch tokens: its logits on the fixture's input are W . mean + b of layer.pb.
        var extraction = atlas.Extraction.Layers[0];
        var withHead = atlas.TrainedHeadModel(atlas.Model, extraction)!;
        var layer = Vit.Layer; // [2, 65, 128]
        var input = Vit.Input;
        using var session = OnnxSessionFactory.Create(withHead.Network);
        using var value = OrtValue.CreateTensorValueFromMemory(input.Data, input.Shape);
        // The fixture has its own 'logits': the head's come first under a unique name.
        string logitsName = withHead.Network.Graph.Output[0].Name;
        Assert.NotEqual("logits", logitsName);
        using var results = session.Run(new RunOptions(), ["input"], [value], [logitsName]);
        var logits = results[0].GetTensorDataAsSpan<float>().ToArray();
        for (int n = 0; n < 2; n++)
        {
            var mean = new float[128];
            for (int t = 1; t < 65; t++)
                System.Numerics.Tensors.TensorPrimitives.Add(mean, layer.Data.AsSpan((n * 65 + t) * 128, 128), mean);
            System.Numerics.Tensors.TensorPrimitives.Multiply(mean, 1f / 64, mean);
            for (int k = 0; k < classes.Length; k++)
            {
                float expected = System.Numerics.Tensors.TensorPrimitives.Dot(head.Weights.AsSpan(k * 128, 128), mean) + head.Biases[k];
                Assert.Equal(expected, logits[n * classes.Length + k], 2e-3f * Math.Max(1f, Math.Abs(expected)));
            }
        }

        // The tangent graph through the attached head at each row's patch token gives the same attributions.
        var positions = Floats(Path.Combine(ntc, AtlasFolder.CacheFolder, "positions.bin"));
        var rows = Enumerable.Range(0, 40).Select(r => new TokenRow
        {
            ImagePath = atlas.ImagePaths[r],
            Position = [(int)positions[2 * r], (int)positions[2 * r + 1]],
        }).ToArray();
        var data = ml.Data.LoadFromEnumerable(rows);
        using var tangent = ml.Transforms.ComputeAttribution(new AttributionEstimator.Options
        {
            Model = withHead,
            Layer = extraction.Name,
            InputColumnName = nameof(TokenRow.ImagePath),
            PositionColumnName = nameof(TokenRow.Position),
            Method = AttributionMethod.TangentGraph,
        }).Fit(data);
        var graphValues = ExtractionData.Column(tangent.Transform(data), AtlasColumnNames.Attribution);
        float scale = Math.Abs(System.Numerics.Tensors.TensorPrimitives.MaxMagnitude(values));
        for (int r = 0; r < 40; r++)
            for (int k = 0; k < classes.Length; k++)
                Assert.Equal(values[r * classes.Length + k], graphValues[r][k], 1e-3f * scale);

        // [N, C, T] holds the same tokens: the same positions and activations, the same patch means to float rounding
        // (summed in another order), so nearly the same head (the fit on 40 images amplifies the rounding a little).
        var transposed = ml.Atlas().Open(nct);
        Assert.Equal(atlas.Activations, transposed.Activations);
        Assert.True(transposed.Extraction.Layers[0].Tokens!.ChannelsFirst); // the layout is kept in model.zip
        Assert.Equal(classes, transposed.ClassNames);
        var transposedMeans = Floats(Path.Combine(nct, AtlasFolder.CacheFolder, "head-features.bin"));
        float meanScale = Math.Abs(System.Numerics.Tensors.TensorPrimitives.MaxMagnitude(means));
        for (int i = 0; i < means.Length; i++)
            Assert.Equal(means[i], transposedMeans[i], 1e-5f * meanScale);
        for (int i = 0; i < values.Length; i++)
            Assert.Equal(values[i], transposed.ClassValues[i], 0.1f * scale);
        Assert.Equal("attribution", transposed.ClassValueName);
        Assert.True(File.Exists(Path.Combine(nct, "index.html")));
    }
}
