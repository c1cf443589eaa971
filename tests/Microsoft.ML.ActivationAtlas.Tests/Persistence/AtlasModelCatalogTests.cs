using System.IO.Compression;
using Microsoft.ML.ActivationAtlas.Extraction;
using Microsoft.ML.ActivationAtlas.Onnx;
using Microsoft.ML.ActivationAtlas.Persistence;
using Microsoft.ML.ActivationAtlas.Tests.Infrastructure;
using Microsoft.ML.Data;

namespace Microsoft.ML.ActivationAtlas.Tests.Persistence;

public sealed class AtlasModelCatalogTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("atlas-persist-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private sealed class ImageRow
    {
        public string ImagePath { get; set; } = "";

        public string Label { get; set; } = "";
    }

    /// <summary>
    /// A real CIFAR-10 pipeline: ML.NET image stages, then an atlas stage, then ML.NET stages that read the
    /// atlas stage's output.
    /// </summary>
    private static (ITransformer Model, IDataView Data) FitPipeline(MLContext ml, double scale)
    {
        var rows = SharedData.CifarImages(perClass: 3).Select(x => new ImageRow { ImagePath = x.Path, Label = x.Label }).ToList();
        var data = ml.Data.LoadFromEnumerable(rows);
        var pipeline = ml.Transforms.LoadImages("Image", imageFolder: null, inputColumnName: nameof(ImageRow.ImagePath))
            .Append(ml.Transforms.ResizeImages("Image", 16, 16))
            .Append(ml.Transforms.ExtractPixels("Pixels", "Image"))
            .Append(new ScaleStageEstimator("Scaled", "Pixels", scale))
            .Append(ml.Transforms.Concatenate("Features", "Scaled", "Pixels"))
            .Append(ml.Transforms.Conversion.MapValueToKey("LabelKey", nameof(ImageRow.Label)));
        return (pipeline.Fit(data), data);
    }

    private static List<float[]> Column(IDataView view, string name) =>
        view.GetColumn<VBuffer<float>>(name).Select(v => v.DenseValues().ToArray()).ToList();

    [Fact]
    public void RoundTripInFreshContextGivesTheSameOutputs()
    {
        var ml = new MLContext(seed: 1);
        var (model, data) = FitPipeline(ml, scale: 0.25);
        string path = Path.Combine(_dir, "model.zip");
        ml.Model.SaveAtlas(model, data.Schema, path);

        var fresh = new MLContext(seed: 2);
        var loaded = fresh.Model.LoadAtlas(path, out var schema);
        Assert.Equal(data.Schema.Select(c => c.Name), schema.Select(c => c.Name));

        var expected = model.Transform(data);
        var actual = loaded.Transform(fresh.Data.LoadFromEnumerable(
            SharedData.CifarImages(perClass: 3).Select(x => new ImageRow { ImagePath = x.Path, Label = x.Label })));

        var exp = Column(expected, "Features");
        var act = Column(actual, "Features");
        Assert.Equal(30, act.Count);
        for (int i = 0; i < exp.Count; i++)
            Assert.Equal(exp[i], act[i]);
        // The atlas stage's state (its factor) survived: Scaled = 0.25 * Pixels.
        var pixels = Column(actual, "Pixels");
        var scaled = Column(actual, "Scaled");
        Assert.Equal(pixels[7].Select(p => p * 0.25f), scaled[7]);
        Assert.Contains(pixels[7], p => p > 0);
    }

    [Fact]
    public void ThePlainMlNetSaveRefusesWithAPointerToSaveAtlas()
    {
        var ml = new MLContext(seed: 1);
        var (model, data) = FitPipeline(ml, scale: 2);
        var e = Assert.Throws<NotSupportedException>(() => ml.Model.Save(model, data.Schema, Path.Combine(_dir, "plain.zip")));
        Assert.Contains("SaveAtlas", e.Message);
    }

    [Fact]
    public void PlainMlNetLoadOfAnAtlasFileFailsOnUseWithAPointerToLoadAtlas()
    {
        var ml = new MLContext(seed: 1);
        var (model, data) = FitPipeline(ml, scale: 2);
        string path = Path.Combine(_dir, "model.zip");
        ml.Model.SaveAtlas(model, data.Schema, path);

        var plain = new MLContext();
        plain.ComponentCatalog.RegisterAssembly(typeof(AtlasModelCatalog).Assembly);
        var loaded = plain.Model.Load(path, out _);
        var e = Assert.ThrowsAny<Exception>(() => loaded.Transform(data));
        Assert.Contains("mlContext.Model.LoadAtlas", e.Message);
    }

    [Fact]
    public void DamagedFilesAreReportedByName()
    {
        var ml = new MLContext(seed: 1);
        var (model, data) = FitPipeline(ml, scale: 2);
        string path = Path.Combine(_dir, "model.zip");
        ml.Model.SaveAtlas(model, data.Schema, path);

        using (var zip = ZipFile.Open(path, ZipArchiveMode.Update))
            zip.Entries.Single(e => e.FullName.EndsWith("/scale.json", StringComparison.Ordinal)).Delete();
        var e = Assert.Throws<InvalidDataException>(() => ml.Model.LoadAtlas(path, out _));
        Assert.Contains(path, e.Message);
        Assert.Contains("scale.json", e.Message);

        var missing = Path.Combine(_dir, "nope.zip");
        var e2 = Assert.Throws<FileNotFoundException>(() => ml.Model.LoadAtlas(missing, out _));
        Assert.Contains(missing, e2.Message);
    }

    [Fact]
    public void SavingIntoAMissingFolderWritesNothing()
    {
        var ml = new MLContext(seed: 1);
        var (model, data) = FitPipeline(ml, scale: 2);
        string path = Path.Combine(_dir, "no-such-folder", "model.zip");
        Assert.Throws<DirectoryNotFoundException>(() => ml.Model.SaveAtlas(model, data.Schema, path));
        Assert.Empty(Directory.GetFiles(_dir, "*", SearchOption.AllDirectories));
    }

    [Fact]
    public void ASavedExtractionStageKeepsEverySessionSetting()
    {
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(SharedData.CifarImages(perClass: 1).Select(x => new ImageRow { ImagePath = x.Path }));
        var session = new OnnxSessionOptions { IntraOpThreads = 1, GpuDeviceId = 3, FallbackToCpu = false, AllowSpinning = true };
        var pipeline = ml.Transforms.LoadImages("Image", imageFolder: null, inputColumnName: nameof(ImageRow.ImagePath))
            .Append(ml.Transforms.ResizeImages("Image", 224, 224))
            .Append(ml.Transforms.ExtractActivations(new ActivationExtractingEstimator.Options
            {
                Model = PretrainedModels.ResNet18,
                Layers = ["ReLU393_Output_0"],
                OutputColumnNames = ["Activation"],
                Session = session,
            }));
        var model = pipeline.Fit(data);
        string path = Path.Combine(_dir, "session.zip");
        ml.Model.SaveAtlas(model, data.Schema, path);

        var loaded = new MLContext(seed: 2).Model.LoadAtlas(path, out _);
        var stage = ((IEnumerable<ITransformer>)loaded).OfType<ActivationExtractingTransformer>().Single();
        var saved = stage.Settings.Session;
        Assert.Equal(1, saved.IntraOpThreads);
        Assert.False(saved.UseCuda);
        Assert.Equal(3, saved.GpuDeviceId);
        Assert.False(saved.FallbackToCpu);
        Assert.True(saved.AllowSpinning);

        // The loaded stage runs with them: the same activations as the fitted one.
        var expected = model.Transform(data).GetColumn<VBuffer<float>>("Activation").Select(v => v.DenseValues().ToArray()).ToList();
        var actual = loaded.Transform(data).GetColumn<VBuffer<float>>("Activation").Select(v => v.DenseValues().ToArray()).ToList();
        Assert.Equal(10, actual.Count);
        for (int i = 0; i < expected.Count; i++)
            Assert.Equal(expected[i], actual[i]);
    }
}
