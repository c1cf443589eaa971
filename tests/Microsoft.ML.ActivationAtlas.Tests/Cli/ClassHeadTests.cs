using Microsoft.ML.ActivationAtlas.Attribution;
using Microsoft.ML.ActivationAtlas.Cli.Building;
using Microsoft.ML.ActivationAtlas.Cli.Commands;
using Microsoft.ML.ActivationAtlas.Extraction;
using Microsoft.ML.ActivationAtlas.Tests.Infrastructure;
using Microsoft.ML.Data;

namespace Microsoft.ML.ActivationAtlas.Tests.Cli;

/// <summary>The linear class head that <c>atlas build --head train</c> trains, and its attributions.</summary>
public sealed class ClassHeadTests
{
    private const string Layer = "ReLU393_Output_0";

    [Fact]
    public void AttributionsFromTheHeadsWeights_EqualTheGradientGraphsAtEachRowsPosition()
    {
        var ml = new MLContext(seed: 3);
        var images = SharedData.CifarImages(6).Where(x => x.Label is "airplane" or "cat" or "ship").ToArray();
        var model = PretrainedModels.ResNet18;
        var input = ml.Data.LoadFromEnumerable(images.Select(x => new BuildCommand.PositionedImageRow { ImagePath = x.Path, Position = [0, 0] }),
            BuildCommand.PositionedImageRow.Schema());
        IDataView Extract(ActivationSampling sampling) => ml.Transforms.LoadImages("Image", null, "ImagePath")
            .Append(ml.Transforms.ResizeImages("Image", 224, 224, "Image"))
            .Append(ml.Transforms.ExtractActivations(new ActivationExtractingEstimator.Options
            {
                Model = model, Layers = [Layer], OutputColumnNames = ["Activation"], Sampling = sampling, Seed = 5, ImagePathColumnName = "ImagePath",
            }))
            .Fit(input).Transform(input);

        var positions = new List<int>();
        var (vectors, rows, dim) = BuildCommand.ReadWithProgress(Extract(ActivationSampling.RandomPosition), "Activation", images.Length, new Progress<double>(), default, positions);
        var (means, _, _) = BuildCommand.ReadWithProgress(Extract(ActivationSampling.SpatialMean), "Activation", images.Length, new Progress<double>(), default);
        var head = ClassHead.Train(ml, model, Layer, means, dim, images.Select(x => x.Label).ToArray(), out var classes, out var weights);
        Assert.Equal(["airplane", "cat", "ship"], classes);
        Assert.Equal(3 * dim, weights.Length);

        var direct = ClassHead.Attribute(vectors, rows, weights, 7 * 7);

        var positioned = ml.Data.LoadFromEnumerable(
            images.Select((x, i) => new BuildCommand.PositionedImageRow { ImagePath = x.Path, Position = [positions[2 * i], positions[2 * i + 1]] }),
            BuildCommand.PositionedImageRow.Schema());
        var graph = ml.Transforms.LoadImages("Image", null, "ImagePath")
            .Append(ml.Transforms.ResizeImages("Image", 224, 224, "Image"))
            .Append(ml.Transforms.ComputeAttribution(new AttributionEstimator.Options { Model = head, Layer = Layer, OutputColumnName = "Attribution" }))
            .Fit(positioned).Transform(positioned);
        var (viaGraph, graphRows, k) = BuildCommand.ReadWithProgress(graph, "Attribution", rows, new Progress<double>(), default);
        Assert.Equal(rows, graphRows);
        Assert.Equal(3, k);
        double scale = viaGraph.Max(Math.Abs);
        Assert.True(scale > 0);
        for (int i = 0; i < direct.Length; i++)
            Assert.True(Math.Abs(direct[i] - viaGraph[i]) <= 1e-4 * scale, $"value {i}: {direct[i]} from the weights, {viaGraph[i]} from the graph");
    }

    [Fact]
    public void OnePassOverEveryPosition_GivesTheRandomPositionVectorsAndTheSpatialMeans()
    {
        var ml = new MLContext(seed: 3);
        var images = SharedData.CifarImages(3).Where(x => x.Label is "automobile" or "deer").ToArray();
        var input = ml.Data.LoadFromEnumerable(images.Select(x => new BuildCommand.PositionedImageRow { ImagePath = x.Path, Position = [0, 0] }),
            BuildCommand.PositionedImageRow.Schema());
        TransformerChain<ActivationExtractingTransformer> Extractor(ActivationSampling sampling) => ml.Transforms.LoadImages("Image", null, "ImagePath")
            .Append(ml.Transforms.ResizeImages("Image", 224, 224, "Image"))
            .Append(ml.Transforms.ExtractActivations(new ActivationExtractingEstimator.Options
            {
                Model = PretrainedModels.ResNet18, Layers = [Layer], OutputColumnNames = ["Activation"], Sampling = sampling, Seed = 9,
                Margin = 1, ImagePathColumnName = "ImagePath", BatchSize = 4,
            }))
            .Fit(input);
        var random = Extractor(ActivationSampling.RandomPosition);
        var expectedPositions = new List<int>();
        var (expected, rows, dim) = BuildCommand.ReadWithProgress(random.Transform(input), "Activation", images.Length, new Progress<double>(), default, expectedPositions);
        var (expectedMeans, _, _) = BuildCommand.ReadWithProgress(Extractor(ActivationSampling.SpatialMean).Transform(input), "Activation", images.Length, new Progress<double>(), default);

        var sampler = random.LastTransformer.Engine.Sampler;
        var positions = new List<int>();
        var (sampled, means, onePassRows, onePassDim) = BuildCommand.ReadSampledAndMeans(Extractor(ActivationSampling.AllPositions).Transform(input), sampler,
            images.Length, new Progress<double>(), default, positions);

        Assert.Equal((rows, dim), (onePassRows, onePassDim));
        Assert.Equal(expectedPositions, positions);
        Assert.True(positions.Distinct().Count() > 1, "the random positions should vary between images");
        Assert.Equal(expected, sampled);
        for (int i = 0; i < means.Length; i++)
            Assert.Equal(expectedMeans[i], means[i], 1e-4 * Math.Max(1, Math.Abs(expectedMeans[i])));
    }
}
