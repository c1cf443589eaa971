using Microsoft.ML.ActivationAtlas.Attribution;
using Microsoft.ML.ActivationAtlas.Extraction;
using Microsoft.ML.ActivationAtlas.Onnx;
using Microsoft.ML.Data;
using Xunit.Abstractions;

namespace Microsoft.ML.ActivationAtlas.Tests.Gradients;

/// <summary>The attached classifier head reproduces ML.NET's maximum-entropy scores on held-out CIFAR-10 images.</summary>
[Collection(nameof(CifarClassifierCollection))]
public sealed class ClassifierHeadTests(CifarClassifierFixture fixture, ITestOutputHelper output)
{
    [Fact]
    public void AttachedHeadProbabilitiesEqualMlNetScores()
    {
        var ml = fixture.Ml;
        var scored = fixture.Trained.Transform(fixture.TestData);
        var mlScores = scored.GetColumn<VBuffer<float>>("Score").Select(v => v.DenseValues().ToArray()).ToList();
        var labels = scored.GetColumn<string>("Label").ToList();

        // Run the attached network (preprocessing model, then ResNet18 + head) on the same images.
        var model = fixture.Classifier;
        using var pre = OnnxSessionFactory.Create(OnnxGraphSurgery.MakeBatchDynamic(model.PreprocessingModel!));
        using var net = OnnxSessionFactory.Create(model.Network);
        Assert.Equal(ClassifierHead.LogitsName, model.Network.Graph.Output[0].Name);
        var converter = new PixelConverter(model.Preprocessing, 224, 224);
        var images = fixture.Ml.Transforms.LoadImages("Image", null, "ImagePath")
            .Append(fixture.Ml.Transforms.ResizeImages("Image", 224, 224, "Image"))
            .Fit(fixture.TestData).Transform(fixture.TestData);
        int row = 0, correct = 0;
        double worst = 0;
        using var cursor = images.GetRowCursor(images.Schema);
        var getImage = cursor.GetGetter<MLImage>(images.Schema["Image"]);
        MLImage image = null!;
        var pixels = new float[converter.Length];
        while (cursor.MoveNext())
        {
            getImage(ref image);
            Assert.Null(converter.FromImage(image, pixels));
            var p = pre.RunFloat(new Dictionary<string, OnnxFloatTensor> { [pre.InputMetadata.Keys.First()] = new(pixels, [1, 3, 224, 224]) });
            var r = net.RunFloat(new Dictionary<string, OnnxFloatTensor> { [net.InputMetadata.Keys.First()] = p.Values.First() },
                [ClassifierHead.LogitsName, ClassifierHead.ProbabilitiesName]);
            var probabilities = r[ClassifierHead.ProbabilitiesName].Data;
            var expected = mlScores[row];
            for (int k = 0; k < expected.Length; k++)
                worst = Math.Max(worst, Math.Abs(probabilities[k] - expected[k]) / Math.Max(Math.Abs(expected[k]), 1e-3));
            int predicted = Array.IndexOf(probabilities, probabilities.Max());
            if (fixture.ClassNames[predicted] == labels[row]) correct++;
            // The logits order classes like the probabilities.
            var logits = r[ClassifierHead.LogitsName].Data;
            Assert.Equal(predicted, Array.IndexOf(logits, logits.Max()));
            row++;
        }
        double accuracy = (double)correct / row;
        output.WriteLine($"max relative difference to ML.NET scores {worst:E2}; CIFAR-10 accuracy on {row} held-out images {accuracy:P1} " +
            $"(trained on {CifarClassifierFixture.TrainPerClass} images per class)");
        Assert.Equal(10 * CifarClassifierFixture.TestPerClass, row);
        Assert.True(worst < 1e-4, $"attached head differs from ML.NET scores by {worst}");
        Assert.True(accuracy > 0.3, $"accuracy {accuracy} is not above chance by a clear margin");
        Assert.Equal(fixture.ClassNames, ClassNames.Resolve(model.Network, 10, null, null));
    }
}

[CollectionDefinition(nameof(CifarClassifierCollection))]
public sealed class CifarClassifierCollection : ICollectionFixture<CifarClassifierFixture>;
