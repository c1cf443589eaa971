using Microsoft.ML.ActivationAtlas.Extraction;
using Microsoft.ML.ActivationAtlas.Tests.Infrastructure;
using Microsoft.ML.Data;

namespace Microsoft.ML.ActivationAtlas.Tests.Extraction;

/// <summary>Real photographs (CIFAR-10) through the ResNet18 package model.</summary>
public sealed class ResNet18ExtractionTests
{
    private const string Relu = "ReLU393_Output_0";

    [Fact]
    public void SpatialMeanOfTheLastBlockEqualsTheStockMlNetPipelinesPooledFeatures()
    {
        var ml = new MLContext(seed: 1);
        var images = ExtractionData.Cifar(ml, perClass: 1);

        // Stock ML.NET: ExtractPixels + ApplyOnnxModel(preprocessing) + ApplyOnnxModel(ResNet18) -> Pooling395 (average pool of ReLU393).
        var stock = ml.Transforms.ExtractPixels("OriginalInput", "Image")
            .Append(ml.Transforms.ApplyOnnxModel(["PreprocessedInput"], ["OriginalInput"], SharedData.ResNet18PreprocessPath))
            .Append(ml.Transforms.CopyColumns("Input247", "PreprocessedInput"))
            .Append(ml.Transforms.ApplyOnnxModel(["Pooling395_Output_0"], ["Input247"], SharedData.ResNet18ModelPath));
        var pooled = ExtractionData.Column(stock.Fit(images).Transform(images), "Pooling395_Output_0");

        var ours = ml.Transforms.ExtractActivations(AtlasColumnNames.Activation, PretrainedModels.ResNet18, Relu, sampling: ActivationSampling.SpatialMean);
        var t = ours.Fit(images);
        Assert.Equal(512, t.Layers[0].Channels);
        var acts = ExtractionData.Column(t.Transform(images), AtlasColumnNames.Activation);
        Assert.Equal(10, acts.Count);
        Assert.True(ExtractionData.MaxRelativeError(acts, pooled) < 1e-4);
    }
}

/// <summary>Sampling modes, batching, annotations and PredictionEngine on CIFAR-10 through ResNet18.</summary>
public sealed class ResNet18SamplingTests
{
    private const string Relu = "ReLU393_Output_0";    // [512, 7, 7], the last block
    private const string Earlier = "ReLU385_Output_0"; // [512, 7, 7], one block before

    private static ActivationExtractingEstimator.Options Options(ActivationSampling sampling, int seed = 0, int batch = 32, params string[] layers) => new()
    {
        Model = PretrainedModels.ResNet18,
        Layers = layers.Length == 0 ? [Relu] : layers,
        Sampling = sampling,
        Seed = seed,
        BatchSize = batch,
        Margin = 1,
    };

    [Fact]
    public void RandomPositionsAreSeededInsideTheMarginAlignedAcrossLayersAndIndependentOfBatchSize()
    {
        var ml = new MLContext(seed: 1);
        var images = ExtractionData.Cifar(ml, perClass: 1);
        var twoLayers = new ActivationExtractingEstimator.Options
        {
            Model = PretrainedModels.ResNet18,
            Layers = [Relu, Earlier],
            OutputColumnNames = ["Last", "Before"],
            Seed = 7,
            BatchSize = 3,
        };
        var t = ml.Transforms.ExtractActivations(twoLayers).Fit(images);
        var view = t.Transform(images);
        var pos = ExtractionData.Positions(view);
        Assert.Equal(10, pos.Count);
        Assert.All(pos, p => Assert.InRange(p[0], 1, 5));
        Assert.All(pos, p => Assert.InRange(p[1], 1, 5));
        Assert.True(pos.Select(p => p[0] * 7 + p[1]).Distinct().Count() > 3, "positions should vary between images");

        // Each layer's vector is that layer's activation at the same position: compare with AllPositions.
        var grid = ml.Transforms.ExtractActivations(new ActivationExtractingEstimator.Options
        {
            Model = PretrainedModels.ResNet18,
            Layers = [Relu, Earlier],
            OutputColumnNames = ["Last", "Before"],
            Sampling = ActivationSampling.AllPositions,
            BatchSize = 8,
        }).Fit(images).Transform(images);
        var gridLast = ExtractionData.Column(grid, "Last");
        var gridBefore = ExtractionData.Column(grid, "Before");
        Assert.Equal(10 * 49, gridLast.Count);
        var last = ExtractionData.Column(view, "Last");
        var before = ExtractionData.Column(view, "Before");
        var expectedLast = pos.Select((p, i) => gridLast[i * 49 + p[0] * 7 + p[1]]).ToList();
        var expectedBefore = pos.Select((p, i) => gridBefore[i * 49 + p[0] * 7 + p[1]]).ToList();
        Assert.True(ExtractionData.MaxRelativeError(last, expectedLast) < 1e-4);
        Assert.True(ExtractionData.MaxRelativeError(before, expectedBefore) < 1e-4);

        // Same seed, other batch size: same positions and values. Other seed: other positions.
        var again = ml.Transforms.ExtractActivations(Options(ActivationSampling.RandomPosition, seed: 7, batch: 1)).Fit(images).Transform(images);
        Assert.Equal(pos, ExtractionData.Positions(again));
        Assert.True(ExtractionData.MaxRelativeError(ExtractionData.Column(again, AtlasColumnNames.Activation), last) < 1e-5);
        var other = ExtractionData.Positions(ml.Transforms.ExtractActivations(Options(ActivationSampling.RandomPosition, seed: 8)).Fit(images).Transform(images));
        Assert.NotEqual(pos, other);
    }

    [Fact]
    public void CenterAnnotationsPassThroughColumnsAndPredictionEngineAgree()
    {
        var ml = new MLContext(seed: 1);
        var rows = Infrastructure.SharedData.CifarImages(1).Select(p => new ExtractionData.ImageRow { ImagePath = p.Path, Label = p.Label }).ToList();
        var data = ml.Data.LoadFromEnumerable(rows);
        var pipeline = ml.Transforms.LoadImages("Image", null, "ImagePath")
            .Append(ml.Transforms.ResizeImages("Image", 224, 224, "Image"))
            .Append(ml.Transforms.ExtractActivations(AtlasColumnNames.Activation, PretrainedModels.ResNet18, Relu, sampling: ActivationSampling.Center));
        var model = pipeline.Fit(data);
        var view = model.Transform(data);

        var column = view.Schema[AtlasColumnNames.Activation];
        Assert.Equal(512, ((VectorDataViewType)column.Type).Size);
        VBuffer<ReadOnlyMemory<char>> slots = default;
        column.GetSlotNames(ref slots);
        Assert.Equal($"{Relu}/0", slots.GetItemOrDefault(0).ToString());
        Assert.Equal($"{Relu}/511", slots.GetItemOrDefault(511).ToString());
        ReadOnlyMemory<char> layer = default;
        column.Annotations.GetValue(ActivationExtractingTransformer.LayerAnnotationKind, ref layer);
        Assert.Equal(Relu, layer.ToString());

        var labels = view.GetColumn<string>("Label").ToList();
        Assert.Equal(rows.Select(r => r.Label), labels);
        var batched = ExtractionData.Column(view, AtlasColumnNames.Activation);
        Assert.All(ExtractionData.Positions(view), p => Assert.Equal(new[] { 3, 3 }, p));

        var engine = ml.Model.CreatePredictionEngine<ExtractionData.ImageRow, Prediction>(model);
        foreach (int i in new[] { 3, 0, 7 })
        {
            var p = engine.Predict(rows[i]);
            Assert.Equal(new[] { 3, 3 }, p.Position);
            Assert.True(ExtractionData.MaxRelativeError([p.Activations], [batched[i]]) < 1e-5);
        }
    }

    [Fact]
    public void EmptyInputGivesEmptyOutput()
    {
        var ml = new MLContext(seed: 1);
        var empty = ExtractionData.Images(ml, []);
        var view = ml.Transforms.ExtractActivations(AtlasColumnNames.Activation, PretrainedModels.ResNet18, Relu).Fit(empty).Transform(empty);
        Assert.Empty(ExtractionData.Column(view, AtlasColumnNames.Activation));
        Assert.Equal(0, view.GetRowCount());
    }

    private sealed class Prediction
    {
        [ColumnName(AtlasColumnNames.Activation)]
        public float[] Activations { get; set; } = [];
        public int[] Position { get; set; } = [];
    }
}
