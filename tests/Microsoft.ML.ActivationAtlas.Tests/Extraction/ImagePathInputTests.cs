using Microsoft.ML.ActivationAtlas.Extraction;
using Microsoft.ML.ActivationAtlas.Tests.Infrastructure;
using Microsoft.ML.Data;

namespace Microsoft.ML.ActivationAtlas.Tests.Extraction;

/// <summary>An image-path input column: the estimator decodes and resizes the files itself, in parallel per batch.</summary>
public sealed class ImagePathInputTests
{
    private const string Relu = "ReLU393_Output_0";

    [Fact]
    public void PathInputMatchesLoadImagesForNetworkSizedFilesAndSkipsBadFilesKeepingRowsAligned()
    {
        string dir = Directory.CreateTempSubdirectory("atlas-path-input").FullName;
        try
        {
            // CIFAR-10 photographs upscaled to 224 x 224 by ML.NET and saved losslessly, so neither route resizes.
            var ml = new MLContext(seed: 1);
            var cifar = SharedData.CifarImages(1).Take(5).ToList();
            var upscaled = ExtractionData.Images(ml, cifar.Select(c => new ExtractionData.ImageRow { ImagePath = c.Path, Label = c.Label }));
            var rows = new List<ExtractionData.ImageRow>();
            using (var cursor = upscaled.GetRowCursor(upscaled.Schema))
            {
                var image = cursor.GetGetter<MLImage>(upscaled.Schema["Image"]);
                while (cursor.MoveNext())
                {
                    MLImage img = null!;
                    image(ref img);
                    string file = Path.Combine(dir, $"{cursor.Position}.png");
                    img.Save(file);
                    img.Dispose();
                    rows.Add(new ExtractionData.ImageRow { ImagePath = file, Label = cifar[(int)cursor.Position].Label });
                }
            }
            var paths = ml.Data.LoadFromEnumerable(rows);
            var options = new ActivationExtractingEstimator.Options
            {
                Model = PretrainedModels.ResNet18,
                Layers = [Relu],
                InputColumnName = "ImagePath",
                Sampling = ActivationSampling.Center,
                BatchSize = 2,
            };
            var fromPaths = ExtractionData.Column(ml.Transforms.ExtractActivations(options).Fit(paths).Transform(paths), AtlasColumnNames.Activation);
            var loaded = ml.Transforms.LoadImages("Image", null, "ImagePath").Fit(paths).Transform(paths);
            var fromImages = ExtractionData.Column(ml.Transforms.ExtractActivations(AtlasColumnNames.Activation, PretrainedModels.ResNet18, Relu, sampling: ActivationSampling.Center).Fit(loaded).Transform(loaded), AtlasColumnNames.Activation);
            Assert.True(ExtractionData.MaxRelativeError(fromPaths, fromImages) < 1e-5);

            // Bad files among good ones: Fail names the file and row; Skip drops them and keeps the other columns aligned.
            string corrupt = Path.Combine(dir, "corrupt.png");
            File.WriteAllBytes(corrupt, [0x89, 0x50, 0x4e, 0x47, 0x00]);
            var mixed = new List<ExtractionData.ImageRow>
            {
                rows[0], new() { ImagePath = Path.Combine(dir, "missing.png"), Label = "gone" }, rows[1], rows[2],
                new() { ImagePath = corrupt, Label = "broken" }, rows[3],
            };
            var data = ml.Data.LoadFromEnumerable(mixed);
            options.BatchSize = 4;
            var failing = ml.Transforms.ExtractActivations(options).Fit(data);
            var e = Assert.Throws<InvalidOperationException>(() => ExtractionData.Column(failing.Transform(data), AtlasColumnNames.Activation));
            Assert.Contains("Row 1", e.Message);
            Assert.Contains("missing.png", e.Message);
            Assert.Contains("does not exist", e.Message);

            options.BadRows = BadRowHandling.Skip;
            var skipping = ml.Transforms.ExtractActivations(options).Fit(data);
            var view = skipping.Transform(data);
            using var c = view.GetRowCursor([view.Schema["Label"], view.Schema[AtlasColumnNames.Activation]]);
            var label = c.GetGetter<ReadOnlyMemory<char>>(view.Schema["Label"]);
            var acts = c.GetGetter<VBuffer<float>>(view.Schema[AtlasColumnNames.Activation]);
            var seen = new List<(string, float[])>();
            ReadOnlyMemory<char> l = default;
            VBuffer<float> a = default;
            while (c.MoveNext())
            {
                label(ref l);
                acts(ref a);
                seen.Add((l.ToString(), a.DenseValues().ToArray()));
            }
            Assert.Equal(rows.Take(4).Select(r => r.Label), seen.Select(s => s.Item1));
            Assert.True(ExtractionData.MaxRelativeError(seen.Select(s => s.Item2).ToList(), fromPaths.Take(4).ToList()) < 1e-5);
            Assert.Equal(2, skipping.SkippedRowCount);
            Assert.Contains(skipping.SkippedRows, s => s.Row == 4 && s.ImagePath == corrupt && s.Reason.Contains("not a readable image"));
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }
}
