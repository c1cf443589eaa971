using Microsoft.ML.ActivationAtlas.Extraction;
using Microsoft.ML.ActivationAtlas.Tests.Infrastructure;
using Microsoft.ML.Data;

namespace Microsoft.ML.ActivationAtlas.Tests.Extraction;

/// <summary>Bad input gets errors naming the file, row, layer or column at fault.</summary>
public sealed class ExtractionErrorTests
{
    private const string Relu = "ReLU393_Output_0";

    [Fact]
    public void UnknownLayerListsClosestNamesAndNon4DLayerSaysSo()
    {
        var ml = new MLContext(seed: 1);
        var images = ExtractionData.Cifar(ml, perClass: 1);
        var e = Assert.Throws<ArgumentException>(() => ml.Transforms.ExtractActivations("A", PretrainedModels.ResNet18, "ReLU39_Output_0").Fit(images));
        Assert.Contains("no layer 'ReLU39_Output_0'", e.Message);
        Assert.Contains("ReLU393_Output_0", e.Message);

        var fx = new Onnx.FixtureData("googlenet");
        var e2 = Assert.Throws<ArgumentException>(() => ml.Transforms.ExtractActivations("A", ActivationModel.FromFile(fx.ModelPath), "logits").Fit(images));
        Assert.Contains("2-D", e2.Message);
        Assert.Contains("4-D", e2.Message);
    }

    [Fact]
    public void MissingAndCorruptImagesNameFileAndRowOrAreSkippedAndCounted()
    {
        string dir = Directory.CreateTempSubdirectory("atlas-bad-images").FullName;
        try
        {
            string corrupt = Path.Combine(dir, "corrupt.jpg");
            File.WriteAllBytes(corrupt, [0xff, 0xd8, 0x00, 0x01, 0x02]);
            string missing = Path.Combine(dir, "missing.jpg");
            var good = SharedData.CifarImages(1).Take(3).Select(p => new ExtractionData.ImageRow { ImagePath = p.Path, Label = p.Label }).ToList();
            var rows = new List<ExtractionData.ImageRow>
            {
                good[0], new() { ImagePath = corrupt, Label = "x" }, good[1], new() { ImagePath = missing, Label = "y" }, good[2],
            };
            var ml = new MLContext(seed: 1);
            var images = ExtractionData.Images(ml, rows);

            var failing = ml.Transforms.ExtractActivations(new ActivationExtractingEstimator.Options
            {
                Model = PretrainedModels.ResNet18,
                Layers = [Relu],
                ImagePathColumnName = "ImagePath",
                BatchSize = 2,
            }).Fit(images);
            var e = Assert.Throws<InvalidOperationException>(() => ExtractionData.Column(failing.Transform(images), AtlasColumnNames.Activation));
            Assert.Contains("Row 1", e.Message);
            Assert.Contains(corrupt, e.Message);

            var skipping = ml.Transforms.ExtractActivations(new ActivationExtractingEstimator.Options
            {
                Model = PretrainedModels.ResNet18,
                Layers = [Relu],
                ImagePathColumnName = "ImagePath",
                BadRows = BadRowHandling.Skip,
                BatchSize = 2,
            }).Fit(images);
            var view = skipping.Transform(images);
            var labels = view.GetColumn<string>("Label").ToList();
            Assert.Equal(good.Select(g => g.Label), labels);
            Assert.Equal(3, ExtractionData.Column(skipping.Transform(images), AtlasColumnNames.Activation).Count);
            Assert.Equal(4, skipping.SkippedRowCount); // two bad rows, two passes
            Assert.Contains(skipping.SkippedRows, s => s.Row == 3 && s.ImagePath == missing && s.Reason.Contains("missing.jpg"));
            Assert.Contains(skipping.SkippedRows, s => s.Row == 1 && s.ImagePath == corrupt);
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    [Fact]
    public void WrongInputColumnTypeAndSizeAreNamed()
    {
        var ml = new MLContext(seed: 1);
        var rows = SharedData.CifarImages(1).Take(1).Select(p => new ExtractionData.ImageRow { ImagePath = p.Path, Label = p.Label });
        var data = ml.Data.LoadFromEnumerable(rows);
        var small = ml.Transforms.LoadImages("Image", null, "ImagePath").Append(ml.Transforms.ResizeImages("Image", 32, 32, "Image")).Fit(data).Transform(data);
        var e = Assert.Throws<ArgumentException>(() => ml.Transforms.ExtractActivations("A", PretrainedModels.ResNet18, Relu).Fit(small));
        Assert.Contains("32x32", e.Message);
        Assert.Contains("ResizeImages", e.Message);
        var keyed = ml.Transforms.Conversion.MapValueToKey("LabelKey", "Label").Fit(data).Transform(data);
        var e2 = Assert.Throws<ArgumentException>(() => ml.Transforms.ExtractActivations("A", PretrainedModels.ResNet18, Relu, inputColumnName: "LabelKey").Fit(keyed));
        Assert.Contains("'LabelKey'", e2.Message);
        Assert.Contains("image file paths", e2.Message);
        var e3 = Assert.Throws<ArgumentException>(() => ml.Transforms.ExtractActivations("A", PretrainedModels.ResNet18, Relu, inputColumnName: "Nope").Fit(data));
        Assert.Contains("'Nope'", e3.Message);
    }
}
