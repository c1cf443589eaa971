using Microsoft.ML.ActivationAtlas.Extraction;
using Microsoft.ML.ActivationAtlas.Persistence;
using Microsoft.ML.ActivationAtlas.Tests.Infrastructure;
using Microsoft.ML.ActivationAtlas.Tests.Onnx;

namespace Microsoft.ML.ActivationAtlas.Tests.Extraction;

/// <summary>A fitted extraction saved with SaveAtlas and loaded with LoadAtlas gives the same activations.</summary>
public sealed class ExtractionPersistenceTests
{
    [Fact]
    public void FileModelIsStoredInTheAtlasFileAndBuiltInModelByName()
    {
        var fx = new FixtureData("squeezenet1_1");
        var input = fx.Input;
        int len = input.Data.Length / 2;
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(Enumerable.Range(0, 2).Select(i => new ExtractionData.PixelRow { Pixels = input.Data.AsSpan(i * len, len).ToArray() }));
        string dir = Directory.CreateTempSubdirectory("atlas-extract-persist").FullName;
        try
        {
            // Copy the model so that loading cannot lean on the original file.
            string copy = Path.Combine(dir, "net.onnx");
            File.Copy(fx.ModelPath, copy);
            var model = ml.Transforms.ExtractActivations(new ActivationExtractingEstimator.Options
            {
                Model = ActivationModel.FromFile(copy, ImagePreprocessing.Identity),
                Layers = [fx.LayerTensor],
                InputColumnName = "Pixels",
                Seed = 5,
                Margin = 2,
            }).Fit(data);
            var before = ExtractionData.Column(model.Transform(data), AtlasColumnNames.Activation);
            var positions = ExtractionData.Positions(model.Transform(data));
            string path = Path.Combine(dir, "extract.zip");
            ml.Model.SaveAtlas(model, data.Schema, path);
            File.Delete(copy);

            var loaded = new MLContext(seed: 9).Model.LoadAtlas(path, out var schema);
            var view = loaded.Transform(data);
            Assert.Equal(positions, ExtractionData.Positions(view));
            Assert.True(ExtractionData.MaxRelativeError(ExtractionData.Column(view, AtlasColumnNames.Activation), before) < 1e-6);

            // The built-in model is stored by name: the file stays small.
            var images = ExtractionData.Cifar(ml, perClass: 1);
            var resnet = ml.Transforms.ExtractActivations(AtlasColumnNames.Activation, PretrainedModels.ResNet18, "ReLU393_Output_0", sampling: ActivationSampling.Center).Fit(images);
            string resnetPath = Path.Combine(dir, "resnet.zip");
            ml.Model.SaveAtlas(resnet, images.Schema, resnetPath);
            Assert.True(new FileInfo(resnetPath).Length < 1_000_000);
            var resnetLoaded = (ActivationExtractingTransformer)ml.Model.LoadAtlas(resnetPath, out _);
            Assert.Equal("ReLU393_Output_0", resnetLoaded.Layers[0].Name);
            Assert.Equal(ActivationSampling.Center, resnetLoaded.Sampling);
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    [Fact]
    public void ActivationFilesRoundTripThroughNpy()
    {
        string dir = Directory.CreateTempSubdirectory("atlas-npy").FullName;
        try
        {
            string output = Path.Combine(dir, "acts.npy");
            using (var writer = new ActivationFileWriter(output, ["a", "b/c"], [3, 2]))
            {
                writer.Append("x,1.jpg", "cat", 1, 2, [new float[] { 1, 2, 3 }, new float[] { 4, 5 }]);
                writer.Append("y.jpg", "dog", 3, 4, [new float[] { 6, 7, 8 }, new float[] { 9, 10 }]);
                Assert.False(File.Exists(Path.Combine(dir, "acts.a.npy")), "nothing appears before Complete");
                writer.Complete(new Dictionary<string, object?> { ["model"] = "m" });
            }
            var (data, rows, cols) = NpyFormat.Read(Path.Combine(dir, "acts.a.npy"));
            Assert.Equal((2, 3), (rows, cols));
            Assert.Equal(new float[] { 1, 2, 3, 6, 7, 8 }, data);
            Assert.Equal(new float[] { 4, 5, 9, 10 }, NpyFormat.Read(Path.Combine(dir, "acts.b_c.npy")).Data);
            var csv = File.ReadAllLines(Path.Combine(dir, "acts.rows.csv"));
            Assert.Equal(["row,image,label,y,x", "0,\"x,1.jpg\",cat,1,2", "1,y.jpg,dog,3,4"], csv);
            Assert.Contains("\"rows\": 2", File.ReadAllText(Path.Combine(dir, "acts.json")));
            Assert.Empty(Directory.GetFiles(dir, "*.tmp"));

            using (var abandoned = new ActivationFileWriter(Path.Combine(dir, "gone.npy"), ["a"], [1]))
                abandoned.Append("z", "", 0, 0, [new float[] { 1 }]);
            Assert.Empty(Directory.GetFiles(dir, "gone*"));
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }
}
