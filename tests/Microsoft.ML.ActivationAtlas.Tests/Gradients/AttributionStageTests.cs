using Microsoft.ML.ActivationAtlas.Attribution;
using Microsoft.ML.ActivationAtlas.Extraction;
using Microsoft.ML.ActivationAtlas.Gradients;
using Microsoft.ML.ActivationAtlas.Onnx;
using Microsoft.ML.ActivationAtlas.Persistence;
using Microsoft.ML.Data;
using Xunit.Abstractions;

namespace Microsoft.ML.ActivationAtlas.Tests.Gradients;

/// <summary>
/// End to end on CIFAR-10 images: extraction rows through <c>ComputeAttribution</c> on ResNet18 + the trained
/// CIFAR-10 head, checked against reverse mode (one backward pass per class) and through SaveAtlas/LoadAtlas.
/// </summary>
[Collection(nameof(CifarClassifierCollection))]
public sealed class AttributionStageTests(CifarClassifierFixture fixture, ITestOutputHelper output)
{
    private const string Layer = "ReLU393_Output_0";

    [Fact]
    public void CancelledToken_StopsTheAttributionCursor()
    {
        var ml = fixture.Ml;
        var rows = ml.Data.LoadFromEnumerable(fixture.TestImages.Take(3)
            .Select(p => new CifarClassifierFixture.ImageRow { ImagePath = p.Path, Label = p.Label }));
        var images = ml.Transforms.LoadImages("Image", null, "ImagePath")
            .Append(ml.Transforms.ResizeImages("Image", 224, 224, "Image")).Fit(rows).Transform(rows);
        var positions = ml.Transforms.ExtractActivations(AtlasColumnNames.Activation, fixture.Classifier, Layer).Fit(images).Transform(images);
        using var cts = new CancellationTokenSource();
        var options = new AttributionEstimator.Options { Model = fixture.Classifier, Layer = Layer, CancellationToken = cts.Token };
        using var attribution = ml.Transforms.ComputeAttribution(options).Fit(positions);
        Assert.Equal(3, attribution.Transform(positions).GetColumn<VBuffer<float>>(AtlasColumnNames.Attribution).Count());
        cts.Cancel();
        Assert.ThrowsAny<OperationCanceledException>(() => attribution.Transform(positions).GetColumn<VBuffer<float>>(AtlasColumnNames.Attribution).ToArray());
    }

    [Fact]
    public void AttributionMatchesPerClassBackwardPassesAndSurvivesSaveLoad()
    {
        var ml = fixture.Ml;
        var rows = ml.Data.LoadFromEnumerable(fixture.TestImages.Take(2 * CifarClassifierFixture.TestPerClass + 3)
            .Select(p => new CifarClassifierFixture.ImageRow { ImagePath = p.Path, Label = p.Label }));
        var images = ml.Transforms.LoadImages("Image", null, "ImagePath")
            .Append(ml.Transforms.ResizeImages("Image", 224, 224, "Image")).Fit(rows).Transform(rows);
        var pipeline = ml.Transforms.ExtractActivations(AtlasColumnNames.Activation, fixture.Classifier, Layer)
            .Append(ml.Transforms.ComputeAttribution(new AttributionEstimator.Options
            {
                Model = fixture.Classifier,
                Layer = Layer,
                BatchSize = 4, // several batches over 11 rows, the last one partial
            }));
        var model = pipeline.Fit(images);
        var result = model.Transform(images);

        VBuffer<ReadOnlyMemory<char>> slotNames = default;
        result.Schema["Attribution"].GetSlotNames(ref slotNames);
        Assert.Equal(fixture.ClassNames, slotNames.DenseValues().Select(s => s.ToString()).ToArray());

        var attributions = result.GetColumn<VBuffer<float>>("Attribution").Select(v => v.DenseValues().ToArray()).ToList();
        var activations = result.GetColumn<VBuffer<float>>(AtlasColumnNames.Activation).Select(v => v.DenseValues().ToArray()).ToList();
        var positions = result.GetColumn<VBuffer<int>>("Position").Select(v => v.DenseValues().ToArray()).ToList();
        Assert.Equal(11, attributions.Count);

        // Independent: reverse mode from each logit to the layer, gradient . h at the row's position.
        var vjp = GradientGraphBuilder.BuildVjp(fixture.Classifier.Network, new VjpOptions { Of = ClassifierHead.LogitsName, WithRespectTo = Layer });
        using var pre = OnnxSessionFactory.Create(OnnxGraphSurgery.MakeBatchDynamic(fixture.Classifier.PreprocessingModel!));
        using var session = OnnxSessionFactory.Create(vjp);
        var converter = new PixelConverter(fixture.Classifier.Preprocessing, 224, 224);
        using var cursor = images.GetRowCursor(images.Schema);
        var getImage = cursor.GetGetter<MLImage>(images.Schema["Image"]);
        MLImage image = null!;
        var pixels = new float[converter.Length];
        double maxRef = 0, maxDiff = 0, maxVectorDiff = 0;
        for (int row = 0; cursor.MoveNext(); row++)
        {
            getImage(ref image);
            Assert.Null(converter.FromImage(image, pixels));
            var input = pre.RunFloat(new Dictionary<string, OnnxFloatTensor> { [pre.InputMetadata.Keys.First()] = new(pixels, [1, 3, 224, 224]) }).Values.First();
            int y = positions[row][0], x = positions[row][1];
            for (int k = 0; k < 10; k++)
            {
                var seed = new float[10];
                seed[k] = 1f;
                var r = session.RunFloat(new Dictionary<string, OnnxFloatTensor>
                {
                    [session.InputMetadata.Keys.First(n => n != "vjp_seed")] = input,
                    ["vjp_seed"] = new(seed, [1, 10]),
                });
                var g = r["vjp_gradient"];
                int c = (int)g.Shape[1], h = (int)g.Shape[2], w = (int)g.Shape[3];
                double expected = 0;
                for (int ch = 0; ch < c; ch++)
                    expected += (double)g.Data[(ch * h + y) * w + x] * activations[row][ch];
                maxRef = Math.Max(maxRef, Math.Abs(expected));
                maxDiff = Math.Max(maxDiff, Math.Abs(attributions[row][k] - expected));
            }
        }
        output.WriteLine($"max |attribution - backward| = {maxDiff:E3}, max |reference| = {maxRef:E3}");
        Assert.True(maxRef > 0);
        Assert.True(maxDiff / maxRef < 1e-4, $"relative difference {maxDiff / maxRef}");
        _ = maxVectorDiff;

        // Save and load: the loaded pipeline gives the same attributions.
        string path = Path.Combine(Path.GetTempPath(), $"attribution-{Guid.NewGuid():N}.zip");
        try
        {
            ml.Model.SaveAtlas(model, images.Schema, path);
            var loaded = ml.Model.LoadAtlas(path, out _);
            var again = loaded.Transform(images).GetColumn<VBuffer<float>>("Attribution").Select(v => v.DenseValues().ToArray()).ToList();
            for (int i = 0; i < again.Count; i++)
                Assert.Equal(attributions[i], again[i]);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void MissingPositionColumnIsNamed()
    {
        var ml = fixture.Ml;
        var data = ml.Data.LoadFromEnumerable(new[] { new CifarClassifierFixture.ImageRow { ImagePath = fixture.TestImages[0].Path } });
        var estimator = ml.Transforms.ComputeAttribution("Attribution", fixture.Classifier, Layer);
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => estimator.Fit(data));
        Assert.Contains("Image", e.Message);
    }
}
