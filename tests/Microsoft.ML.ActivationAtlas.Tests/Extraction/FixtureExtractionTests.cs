using Microsoft.ML.ActivationAtlas.Extraction;
using Microsoft.ML.ActivationAtlas.Tests.Infrastructure;
using Microsoft.ML.ActivationAtlas.Tests.Onnx;

namespace Microsoft.ML.ActivationAtlas.Tests.Extraction;

/// <summary>The estimator on the five conformance models: its activations agree with the float64 oracle's layer.pb.</summary>
public sealed class FixtureExtractionTests
{
    public static TheoryData<string> Models => new(SharedData.FixtureModels);

    [Theory]
    [MemberData(nameof(Models))]
    public void AllPositionsReproduceTheReferenceLayerAndSpatialMeanItsAverage(string name)
    {
        var fx = new FixtureData(name);
        var input = fx.Input;
        int n = (int)input.Shape[0], len = input.Data.Length / n;
        var ml = new MLContext(seed: 1);
        var rows = Enumerable.Range(0, n).Select(i => new ExtractionData.PixelRow { Pixels = input.Data.AsSpan(i * len, len).ToArray() });
        var data = ml.Data.LoadFromEnumerable(rows);
        var model = ActivationModel.FromFile(fx.ModelPath, ImagePreprocessing.Identity);

        var all = ml.Transforms.ExtractActivations(new ActivationExtractingEstimator.Options
        {
            Model = model,
            Layers = [fx.LayerTensor],
            InputColumnName = "Pixels",
            Sampling = ActivationSampling.AllPositions,
            BatchSize = 2,
        }).Fit(data);
        var view = all.Transform(data);
        var acts = ExtractionData.Column(view, AtlasColumnNames.Activation);
        var pos = ExtractionData.Positions(view);
        var layer = fx.Layer;
        int c = (int)layer.Shape[1], h = (int)layer.Shape[2], w = (int)layer.Shape[3];
        Assert.Equal(n * h * w, acts.Count);
        var expected = new List<float[]>();
        for (int i = 0; i < n; i++)
            for (int y = 0; y < h; y++)
                for (int x = 0; x < w; x++)
                {
                    Assert.Equal(new[] { y, x }, pos[expected.Count]);
                    expected.Add(Enumerable.Range(0, c).Select(ch => layer.Data[((i * c + ch) * h + y) * w + x]).ToArray());
                }
        Assert.True(ExtractionData.MaxRelativeError(acts, expected) < 1e-4);

        var mean = ml.Transforms.ExtractActivations(new ActivationExtractingEstimator.Options
        {
            Model = model,
            Layers = [fx.LayerModule], // the friendly name resolves to the same tensor
            InputColumnName = "Pixels",
            Sampling = ActivationSampling.SpatialMean,
        }).Fit(data);
        Assert.Equal(fx.LayerTensor, mean.Layers[0].Name);
        var means = ExtractionData.Column(mean.Transform(data), AtlasColumnNames.Activation);
        var expectedMeans = Enumerable.Range(0, n).Select(i => Enumerable.Range(0, c)
            .Select(ch => expected.Skip(i * h * w).Take(h * w).Average(v => v[ch])).ToArray()).ToList();
        Assert.True(ExtractionData.MaxRelativeError(means, expectedMeans) < 1e-4);
    }
}
