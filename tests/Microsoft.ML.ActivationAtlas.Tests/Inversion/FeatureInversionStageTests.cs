using Microsoft.ML.ActivationAtlas.Extraction;
using Microsoft.ML.ActivationAtlas.Inversion;
using Microsoft.ML.ActivationAtlas.Inversion.Network;
using Microsoft.ML.ActivationAtlas.Inversion.Objectives;
using Microsoft.ML.ActivationAtlas.Persistence;
using Microsoft.ML.Data;
using Microsoft.ML.Transforms.Image;

namespace Microsoft.ML.ActivationAtlas.Tests.Inversion;

/// <summary>The ML.NET stage on the real ResNet18: icon and fidelity columns, persistence, single-call visualisation.</summary>
public sealed class FeatureInversionStageTests
{
    private const string Layer = "ReLU393_Output_0";

    private sealed class DirectionRow
    {
        [VectorType(512)]
        public float[] Direction { get; set; } = [];
    }

    private static FeatureInversionEstimator.Options Options(int steps) => new()
    {
        Model = PretrainedModels.ResNet18,
        Layer = Layer,
        Size = 32,
        Steps = steps,
        Attempts = 1,
        Seed = 2,
        Transforms = IconTransforms.LucidStandard,
    };

    /// <summary>Mean layer-4 activations of a few CIFAR-10 images of each of three classes (run at 32 px).</summary>
    private static List<float[]> ClassMeans()
    {
        using var model = OnnxLayerGradientModel.Load(Infrastructure.SharedData.ResNet18ModelPath, Layer, new OnnxLayerModelOptions
        {
            InputSize = 32,
            Normalization = MeanImagePreprocessing.Load(Infrastructure.SharedData.ResNet18PreprocessPath, 32),
        });
        var paths = CifarImages.Paths(4);
        var layer = new float[paths.Count * 512];
        model.Forward(CifarImages.Load(paths, 32), paths.Count, layer);
        return Enumerable.Range(0, 3).Select(k =>
            Enumerable.Range(0, 512).Select(c => Enumerable.Range(k * 4, 4).Average(i => layer[i * 512 + c])).ToArray()).ToList();
    }

    [Fact]
    public void InvertFeaturesAddsIconAndFidelityColumnsAndSurvivesSaveAtlas()
    {
        var ml = new MLContext(1);
        var directions = ClassMeans();
        var data = ml.Data.LoadFromEnumerable(directions.Select(d => new DirectionRow { Direction = d }));
        var options = Options(steps: 12);
        options.Whitening = WhiteningKind.SecondMomentInverse;
        var transformer = ml.Transforms.InvertFeatures(options).Fit(data);
        Assert.NotNull(transformer.Whitening);
        var output = transformer.Transform(data);
        var iconType = Assert.IsType<ImageDataViewType>(output.Schema["Icon"].Type);
        Assert.Equal((32, 32), (iconType.Height, iconType.Width));
        var fidelities = output.GetColumn<float>("IconFidelity").ToArray();
        Assert.Equal(3, fidelities.Length);
        Assert.All(fidelities, f => Assert.InRange(f, 0.3f, 1f));
        // The optimisation is what makes them faithful: the same start after one step (the fewest allowed) points far
        // less along each direction (a random image already reaches a fair cosine with a non-negative target).
        var baselineOptions = Options(steps: 1);
        baselineOptions.Whitening = WhiteningKind.SecondMomentInverse;
        using (var baseline = ml.Transforms.InvertFeatures(baselineOptions).Fit(data))
        {
            var start = baseline.Transform(data).GetColumn<float>("IconFidelity").ToArray();
            for (int i = 0; i < 3; i++)
                Assert.True(fidelities[i] >= start[i] + 0.15f, $"direction {i}: fidelity {fidelities[i]:0.000} after 12 steps, {start[i]:0.000} after 1");
        }
        var icons = output.GetColumn<MLImage>("Icon").ToArray();
        Assert.All(icons, i => Assert.Equal((32, 32), (i.Width, i.Height)));
        // Icons of different directions differ.
        Assert.NotEqual(icons[0].Pixels.ToArray(), icons[1].Pixels.ToArray());

        string path = Path.Combine(Path.GetTempPath(), $"inversion-{Environment.ProcessId}.zip");
        try
        {
            ml.Model.SaveAtlas(transformer, data.Schema, path);
            var loaded = ml.Model.LoadAtlas(path, out _);
            var again = loaded.Transform(data).GetColumn<MLImage>("Icon").ToArray();
            for (int i = 0; i < 3; i++)
                Assert.Equal(icons[i].Pixels.ToArray(), again[i].Pixels.ToArray()); // same seed, same whitening -> same icons
        }
        finally
        {
            File.Delete(path);
            transformer.Dispose();
        }
    }

    [Fact]
    public void MacoStageUsesTheImagesSpectrumAndKeepsItThroughSaveAtlas()
    {
        var ml = new MLContext(1);
        var images = CifarImages.Paths(3).Select(MLImage.CreateFromFile).ToList();
        var options = Options(steps: 6);
        options.Basis = Microsoft.ML.ActivationAtlas.Inversion.Parameterization.ImageBasis.Maco;
        options.MacoMagnitude = IconImages.MeanAmplitudeSpectrum(images, 32);
        images.ForEach(i => i.Dispose());
        var directions = ClassMeans();
        var data = ml.Data.LoadFromEnumerable(directions.Select(d => new DirectionRow { Direction = d }));
        using var transformer = ml.Transforms.InvertFeatures(options).Fit(data);
        var icons = transformer.Transform(data).GetColumn<MLImage>("Icon").ToArray();
        string path = Path.Combine(Path.GetTempPath(), $"inversion-maco-{Environment.ProcessId}.zip");
        try
        {
            ml.Model.SaveAtlas(transformer, data.Schema, path);
            var again = ml.Model.LoadAtlas(path, out _).Transform(data).GetColumn<MLImage>("Icon").ToArray();
            for (int i = 0; i < icons.Length; i++)
                Assert.Equal(icons[i].Pixels.ToArray(), again[i].Pixels.ToArray());
        }
        finally
        {
            File.Delete(path);
        }
        options.MacoMagnitude = null;
        Assert.Contains("MacoMagnitude", Assert.Throws<ArgumentException>(() => ml.Transforms.InvertFeatures(options)).Message);
    }

    [Fact]
    public void StageRejectsWrongDirectionsWithTheColumnName()
    {
        var ml = new MLContext(1);
        var data = ml.Data.LoadFromEnumerable(new[] { new DirectionRow { Direction = new float[512] } });
        using var transformer = ml.Transforms.InvertFeatures(Options(steps: 2)).Fit(data);
        var ex = Assert.Throws<ArgumentException>(() => transformer.Transform(data));
        Assert.Contains("zero vector", ex.Message);
        Assert.Contains("'Direction'", ex.Message);
        var missing = Assert.Throws<ArgumentOutOfRangeException>(() => ml.Transforms.InvertFeatures(PretrainedModels.ResNet18, Layer, inputColumnName: "Nope").Fit(data));
        Assert.Contains("'Nope'", missing.Message);
    }

    [Fact]
    public void SingleCallVisualisationAndActivationGrid()
    {
        var ml = new MLContext(1);
        var channel = ml.Transforms.VisualizeChannel(Options(steps: 10), 7);
        Assert.Equal((32, 32), (channel.Image.Width, channel.Image.Height));
        var start = ml.Transforms.VisualizeChannel(Options(steps: 1), 7);
        Assert.True(channel.Fidelity >= start.Fidelity + 0.15, $"channel icon fidelity {channel.Fidelity:0.000} after 10 steps, {start.Fidelity:0.000} after 1");
        Assert.Throws<ArgumentOutOfRangeException>(() => ml.Transforms.VisualizeChannel(Options(2), 512));

        var gridOptions = Options(steps: 2);
        gridOptions.NetworkInputSize = 64; // the image's layer-4 grid is 2 x 2
        using var image = MLImage.CreateFromFile(CifarImages.Paths(1)[0]);
        var grid = ml.Transforms.ActivationGrid(gridOptions, image);
        Assert.Equal((2, 2), (grid.Rows, grid.Columns));
        Assert.Equal((64, 64), (grid.Image.Width, grid.Image.Height));
        Assert.Equal(4 * 512, grid.Activations.Length);
    }
}
