using System.Text.Json;
using Microsoft.ML.ActivationAtlas.Building;
using Microsoft.ML.ActivationAtlas.Extraction;
using Microsoft.ML.ActivationAtlas.Inversion;
using Microsoft.ML.ActivationAtlas.Persistence;
using Microsoft.ML.Data;
using Microsoft.ML.ActivationAtlas.Tests.Infrastructure;
using Microsoft.ML.ActivationAtlas.Tests.Onnx;
using Xunit.Abstractions;

namespace Microsoft.ML.ActivationAtlas.Tests.Building;

/// <summary>
/// Inverted icons on a vision transformer through the library's composed paths: the atlas builder's icon step and the
/// single-image activation grid on the vit_tiny fixture (64 px, 8 px patches, random weights), whose token layer is
/// selected by its friendly name as on a CNN.
/// </summary>
public sealed class VitInvertedAtlasTests(ITestOutputHelper output) : IDisposable
{
    private static readonly FixtureData Vit = new("vit_tiny");
    private readonly string _root = Path.Combine(Path.GetTempPath(), "atlas-vit-icons-" + Guid.NewGuid().ToString("N"));

    private static ActivationModel Model => ActivationModel.FromFile(Vit.ModelPath, ImagePreprocessing.Identity);

    [Fact]
    public void AtlasOnAVisionTransformerDrawsInvertedIcons()
    {
        string images = InvertedAtlasFixture.CopyImages(_root, "images", 8, "cat", "ship", "frog");
        var built = new MLContext(1).Atlas().Build(images, Path.Combine(_root, "atlas"), new AtlasBuildOptions
        {
            Model = Model,
            ModelName = "vit_tiny.onnx", // as the command line names a model file
            Layer = "encoder_layer_2",
            GridSizes = [2],
            IconSize = 32,
            IconSteps = 16,
            Seed = 5,
        });
        using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(built.Folder, "atlas.json")));
        var cells = json.RootElement.GetProperty("grids").EnumerateArray().Single().GetProperty("cells").EnumerateArray().ToArray();
        Assert.NotEmpty(cells);
        Assert.All(cells, c => Assert.Equal("inversion", c.GetProperty("icon").GetString()));
        var fidelities = cells.Select(c => c.GetProperty("fidelity").GetDouble()).ToArray();
        output.WriteLine($"vit_tiny atlas, 2x2 grid: fidelity {string.Join(", ", fidelities.Select(f => f.ToString("F3")))}");
        Assert.All(fidelities, f => Assert.InRange(f, 0.5, 1.0));

        // One image on this atlas, the model named again by its file: the atlas holds a copy of the network, which is
        // the same network, so the grid is placed on it (an atlas of another layer is refused, ActivationGridTests).
        var grid = new MLContext(1).Transforms.ActivationGrid(Path.Combine(SharedData.Cifar10Test, "ship", "0001.jpg"), new ActivationGridOptions
        {
            Model = Model,
            Layer = "encoder_layer_2",
            Atlas = new MLContext(1).Atlas().Open(built.Folder),
            IconSteps = 2,
            IconSize = 16,
        });
        Assert.Equal(64, grid.Icons.Count);
        Assert.NotNull(grid.Atlas);
        Assert.Equal(2 * 64, grid.Layout.Length);
    }

    [Fact]
    public void ActivationGridOfAVisionTransformerHasOneIconPerPatchToken()
    {
        var grid = new MLContext(1).Transforms.ActivationGrid(Path.Combine(SharedData.Cifar10Test, "ship", "0001.jpg"), new ActivationGridOptions
        {
            Model = Model,
            Layer = Vit.LayerTensor,
            IconSteps = 2,
            IconSize = 16,
        });
        Assert.Equal((8, 8), (grid.Rows, grid.Columns));
        Assert.Equal(64, grid.Icons.Count);
        Assert.All(grid.Icons, icon => Assert.NotNull(icon));
        // Each cell's activation is its patch token's (token 1 + p, after the class token), not its neighbour's.
        using var model = Microsoft.ML.ActivationAtlas.Inversion.Network.OnnxLayerGradientModel.Load(Vit.ModelPath, Vit.LayerTensor);
        var image = Inversion.CifarImages.Load([Path.Combine(SharedData.Cifar10Test, "ship", "0001.jpg")], 64);
        System.Numerics.Tensors.TensorPrimitives.Multiply(image, 255f, image); // ImagePreprocessing.Identity: 0..255 pixels
        var layer = new float[128 * 65];
        model.Forward(image, 1, layer);
        double Error(int offset)
        {
            double sum = 0;
            for (int p = 0; p < 64; p++)
                for (int c = 0; c < 128; c++)
                    sum += Math.Abs(layer[c * 65 + offset + p] - grid.Activations[p * 128 + c]);
            return sum;
        }
        output.WriteLine($"grid vs patch tokens {Error(1):G4}, vs tokens shifted by one {Error(0):G4}");
        Assert.True(Error(1) < 0.5 * Error(0));
    }

    private sealed class DirectionRow
    {
        [VectorType(128)]
        public float[] Direction { get; set; } = [];
    }

    [Fact]
    public void InversionStageAtTheClassTokenSurvivesSaveAtlas()
    {
        var ml = new MLContext(1);
        var rng = new Random(7);
        var directions = Enumerable.Range(0, 2).Select(_ => Enumerable.Range(0, 128).Select(_ => (float)(rng.NextDouble() - 0.5)).ToArray()).ToList();
        var data = ml.Data.LoadFromEnumerable(directions.Select(d => new DirectionRow { Direction = d }));
        FeatureInversionEstimator.Options Options(int? token) => new()
        {
            Model = Model,
            Layer = Vit.LayerTensor,
            Size = 32,
            Steps = 8,
            Token = token,
        };
        using var classToken = ml.Transforms.InvertFeatures(Options(IconRenderOptions.ClassToken)).Fit(data);
        using var centre = ml.Transforms.InvertFeatures(Options(null)).Fit(data);
        var icons = classToken.Transform(data).GetColumn<MLImage>("Icon").Select(i => i.Pixels.ToArray()).ToArray();
        var centreIcons = centre.Transform(data).GetColumn<MLImage>("Icon").Select(i => i.Pixels.ToArray()).ToArray();
        Assert.NotEqual(centreIcons[0], icons[0]); // the objective token matters
        string path = Path.Combine(_root, "vit-inversion.zip");
        Directory.CreateDirectory(_root);
        ml.Model.SaveAtlas(classToken, data.Schema, path);
        var loaded = ml.Model.LoadAtlas(path, out _);
        var again = loaded.Transform(data).GetColumn<MLImage>("Icon").Select(i => i.Pixels.ToArray()).ToArray();
        Assert.Equal(icons[0], again[0]);
        Assert.Equal(icons[1], again[1]);
        (loaded as IDisposable)?.Dispose();
        var bad = Options(65);
        Assert.Contains("65 tokens", Assert.ThrowsAny<ArgumentException>(() => ml.Transforms.InvertFeatures(bad).Fit(data).Transform(data).Preview()).Message);
    }

    public void Dispose()
    {
        if (Directory.Exists(_root))
            Directory.Delete(_root, true);
    }
}
