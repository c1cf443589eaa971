using Microsoft.ML.ActivationAtlas.Attribution;
using Microsoft.ML.ActivationAtlas.Building;
using Microsoft.ML.ActivationAtlas.Extraction;
using Microsoft.ML.ActivationAtlas.Tests.Infrastructure;
using Microsoft.ML.Data;

namespace Microsoft.ML.ActivationAtlas.Tests.Building;

/// <summary>
/// The two pieces that let an atlas build run the network once: the extraction stage's spatial-mean column (beside
/// the random-position vector) and the attribution stage's closed form for a linear head on the spatial mean.
/// </summary>
public sealed class OnePassAndClosedFormTests
{
    private const string Layer = "ReLU393_Output_0";

    private sealed class Row
    {
        public string ImagePath { get; set; } = "";
    }

    private static IDataView Paths(MLContext ml, IEnumerable<string> paths) => ml.Data.LoadFromEnumerable(paths.Select(p => new Row { ImagePath = p }));

    private static ActivationExtractingEstimator.Options Extraction(ActivationSampling sampling, string? mean = null, long firstRow = 0) => new()
    {
        Model = PretrainedModels.ResNet18,
        Layers = [Layer],
        OutputColumnNames = ["Activation"],
        InputColumnName = "ImagePath",
        SpatialMeanColumnName = mean,
        Sampling = sampling,
        Seed = 9,
        FirstRowIndex = firstRow,
        BatchSize = 4,
    };

    private static float[] Column(IDataView data, string name) => Matrices.Read(data, name, out _, out _);

    [Fact]
    public void TheSpatialMeanColumnAndFirstRowIndexGiveWhatSeparatePassesGive()
    {
        var ml = new MLContext(seed: 3);
        var paths = SharedData.CifarImages(1).Select(x => x.Path).ToArray();
        var input = Paths(ml, paths);

        var onePass = ml.Transforms.ExtractActivations(Extraction(ActivationSampling.RandomPosition, mean: "Mean")).Fit(input).Transform(input);
        var random = ml.Transforms.ExtractActivations(Extraction(ActivationSampling.RandomPosition)).Fit(input).Transform(input);
        var means = ml.Transforms.ExtractActivations(Extraction(ActivationSampling.SpatialMean)).Fit(input).Transform(input);

        Assert.Equal(Column(random, "Activation"), Column(onePass, "Activation"));
        Assert.Equal(Column(means, "Activation"), Column(onePass, "Mean"));
        var positions = onePass.GetColumn<VBuffer<int>>("Position").Select(v => (v.GetItemOrDefault(0), v.GetItemOrDefault(1))).ToArray();
        Assert.True(positions.Distinct().Count() > 1, "the random positions should vary between images");

        // The last 4 images alone, told where they start, get the positions and vectors of the whole pass.
        var tail = Paths(ml, paths.Skip(6));
        var part = ml.Transforms.ExtractActivations(Extraction(ActivationSampling.RandomPosition, firstRow: 6)).Fit(tail).Transform(tail);
        Assert.Equal(Column(random, "Activation").Skip(6 * 512), Column(part, "Activation"));
        Assert.Equal(positions.Skip(6), part.GetColumn<VBuffer<int>>("Position").Select(v => (v.GetItemOrDefault(0), v.GetItemOrDefault(1))));

        // PredictionEngine's row mapper fills the mean column too.
        var mapper = ml.Transforms.ExtractActivations(Extraction(ActivationSampling.RandomPosition, mean: "Mean")).Fit(input);
        var one = Paths(ml, paths.Take(1));
        var mapped = mapper.GetRowToRowMapper(one.Schema);
        using var cursor = one.GetRowCursor(one.Schema);
        using var row = mapped.GetRow(cursor, mapped.OutputSchema);
        var getter = row.GetGetter<VBuffer<float>>(mapped.OutputSchema["Mean"]);
        Assert.True(cursor.MoveNext());
        VBuffer<float> mean = default;
        getter(ref mean);
        var expected = Column(means, "Activation").AsSpan(0, 512).ToArray();
        var actual = mean.DenseValues().ToArray();
        for (int c = 0; c < 512; c++)
            Assert.Equal(expected[c], actual[c], 1e-4f * Math.Max(1f, Math.Abs(expected[c])));
    }

    [Fact]
    public void TheClosedFormOfALinearHeadOnTheSpatialMeanEqualsTheTangentGraph()
    {
        var ml = new MLContext(seed: 3);
        var images = SharedData.CifarImages(6).Where(x => x.Label is "airplane" or "cat" or "ship").ToArray();
        var input = Paths(ml, images.Select(x => x.Path));
        var extracted = ml.Transforms.ExtractActivations(Extraction(ActivationSampling.RandomPosition, mean: "Mean")).Fit(input).Transform(input);
        var head = LinearHeadTrainer.Train(ml, PretrainedModels.ResNet18, Layer, Column(extracted, "Mean"), 512, images.Select(x => x.Label).ToArray(), out var classes);
        Assert.Equal(["airplane", "cat", "ship"], classes);

        AttributionTransformer Attribution(AttributionMethod method) => ml.Transforms.ComputeAttribution(new AttributionEstimator.Options
        {
            Model = head,
            Layer = Layer,
            InputColumnName = "ImagePath", // image files, decoded by the stage
            ActivationColumnName = "Activation",
            Method = method,
            BatchSize = 4,
        }).Fit(extracted);
        using var closed = Attribution(AttributionMethod.Auto);
        using var graph = Attribution(AttributionMethod.TangentGraph);
        Assert.True(closed.UsesClosedForm);
        Assert.False(graph.UsesClosedForm);
        Assert.Equal(classes, closed.ClassNames);

        var direct = Column(closed.Transform(extracted), "Attribution");
        var viaGraph = Column(graph.Transform(extracted), "Attribution");
        Assert.Equal(images.Length * 3, direct.Length);
        double scale = viaGraph.Max(Math.Abs);
        Assert.True(scale > 0);
        for (int i = 0; i < direct.Length; i++)
            Assert.True(Math.Abs(direct[i] - viaGraph[i]) <= 1e-4 * scale, $"value {i}: {direct[i]} in closed form, {viaGraph[i]} from the graph");

        // The closed form needs only the activation column; a network with another head cannot use it.
        var activationsOnly = Matrices.View(images.Length, ("Activation", Column(extracted, "Activation"), 512));
        Assert.Equal(direct, Column(closed.Transform(activationsOnly), "Attribution"));
        var e = Assert.Throws<ArgumentException>(() => ml.Transforms.ComputeAttribution(new AttributionEstimator.Options
        {
            Model = head, Layer = "Plus391_Output_0", ActivationColumnName = "Activation", Method = AttributionMethod.LinearHead,
        }).Fit(extracted));
        Assert.Contains("linear head on its spatial mean", e.Message);
    }
}
