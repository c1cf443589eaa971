using Microsoft.ML.ActivationAtlas.Extraction;
using Microsoft.ML.ActivationAtlas.Onnx;
using Microsoft.ML.ActivationAtlas.Persistence;
using Microsoft.ML.ActivationAtlas.Tests.Infrastructure;
using Microsoft.ML.Data;

namespace Microsoft.ML.ActivationAtlas.Tests.Persistence;

public sealed class SessionOptionsPersistenceTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("atlas-session-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private sealed class ImageRow
    {
        public string ImagePath { get; set; } = "";
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
        string path = Path.Combine(_dir, "model.zip");
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
