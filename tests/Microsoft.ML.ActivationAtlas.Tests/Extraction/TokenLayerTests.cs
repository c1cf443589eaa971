using Microsoft.ML.ActivationAtlas.Attribution;
using Microsoft.ML.ActivationAtlas.Extraction;
using Microsoft.ML.ActivationAtlas.Gradients;
using Microsoft.ML.ActivationAtlas.Onnx;
using Microsoft.ML.ActivationAtlas.Persistence;
using Microsoft.ML.ActivationAtlas.Tests.Infrastructure;
using Microsoft.ML.ActivationAtlas.Tests.Onnx;

namespace Microsoft.ML.ActivationAtlas.Tests.Extraction;

/// <summary>
/// Token layers [N, T, C] of a vision transformer (the vit_tiny fixture: 64 px, 8 px patches, class token + 8x8
/// patches, width 128) as first-class layers: listing with the patch grid, the error for a tensor that is neither
/// spatial nor tokens, extraction of patch tokens / patch mean / class token against the float64 oracle's layer.pb,
/// random patch tokens on CIFAR-10 (never on the grid's border, reproducible per seed), and attribution at a token.
/// </summary>
public sealed class TokenLayerTests
{
    private static readonly FixtureData Vit = new("vit_tiny");

    [Fact]
    public void ListingShowsTokenLayersWithTheirPatchGrid()
    {
        var network = OnnxModelIO.Load(Vit.ModelPath);
        var layers = OnnxLayers.List(network);
        var block = Assert.Single(layers, l => l.Name == Vit.LayerTensor);
        Assert.NotNull(block.Tokens);
        Assert.Equal((128, 8, 8, 65), (block.Channels, block.Height, block.Width, block.TokenCount));
        Assert.Equal("[65, 128] tokens 1+8x8", block.ShapeText);
        Assert.Equal(block.Name, OnnxLayers.Resolve(OnnxLayers.Probe(network), "encoder_layer_2").Name);
        // The patch embedding (a convolution) is an ordinary spatial layer; the logits are no layer at all.
        Assert.Contains(layers, l => l.Tokens is null && l.Shape.SequenceEqual(new long[] { 1, 128, 8, 8 }));
        Assert.DoesNotContain(layers, l => l.Name == "logits");
    }

    [Fact]
    public void NeitherSpatialNorTokensIsAClearError()
    {
        var network = OnnxModelIO.Load(Vit.ModelPath);
        var e = Assert.Throws<ArgumentException>(() => OnnxLayers.Resolve(OnnxLayers.Probe(network), "logits"));
        Assert.Contains("'logits'", e.Message);
        Assert.Contains("neither a spatial layer", e.Message);
        // With two register tokens declared, 65 - 3 = 62 patch tokens form no square grid.
        var registers = OnnxLayers.Probe(network, tokens: new TokenLayout { RegisterTokens = 2 });
        var r = Assert.Throws<ArgumentException>(() => OnnxLayers.Resolve(registers, Vit.LayerTensor));
        Assert.Contains("[1, 65, 128]", r.Message);
        // Told the layout, the error says why the layer does not fit it.
        r = Assert.Throws<ArgumentException>(() => OnnxLayers.Resolve(registers, Vit.LayerTensor, new TokenLayout { RegisterTokens = 2 }));
        Assert.Contains("1 class + 2 register tokens leave 62 patch tokens, not a square grid", r.Message);
        Assert.Equal("tokens", r.ParamName);
        Assert.Throws<ArgumentOutOfRangeException>(() => new TokenLayout { ClassTokens = -1 });
        var model = ActivationModel.FromFile(Vit.ModelPath, ImagePreprocessing.Identity);
        var ml = new MLContext(seed: 1);
        string spatial = OnnxLayers.List(network).First(l => l.Tokens is null).Name;
        var c = Assert.Throws<ArgumentException>(() => ml.Transforms.ExtractActivations(new ActivationExtractingEstimator.Options
        {
            Model = model, Layers = [spatial], InputColumnName = "Pixels", Sampling = ActivationSampling.ClassToken,
        }).Fit(ml.Data.LoadFromEnumerable(Array.Empty<ExtractionData.PixelRow>())));
        Assert.Contains("ClassToken", c.Message);
    }

    [Fact]
    public void PatchTokensPatchMeanAndClassTokenMatchTheReferenceLayer()
    {
        var input = Vit.Input;
        int n = (int)input.Shape[0], len = input.Data.Length / n;
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(Enumerable.Range(0, n).Select(i => new ExtractionData.PixelRow { Pixels = input.Data.AsSpan(i * len, len).ToArray() }));
        var model = ActivationModel.FromFile(Vit.ModelPath, ImagePreprocessing.Identity);
        (List<float[]> Values, List<int[]> Positions) Extract(ActivationSampling sampling)
        {
            var view = ml.Transforms.ExtractActivations(new ActivationExtractingEstimator.Options
            {
                Model = model, Layers = [Vit.LayerTensor], InputColumnName = "Pixels", Sampling = sampling, BatchSize = 2,
            }).Fit(data).Transform(data);
            return (ExtractionData.Column(view, AtlasColumnNames.Activation), ExtractionData.Positions(view));
        }
        var layer = Vit.Layer; // [2, 65, 128]
        const int t = 65, c = 128;
        float[] Token(int image, int token) => layer.Data.AsSpan((image * t + token) * c, c).ToArray();

        var (all, positions) = Extract(ActivationSampling.AllPositions);
        var expected = new List<float[]>();
        for (int i = 0; i < n; i++)
            for (int p = 0; p < 64; p++)
            {
                Assert.Equal(new[] { p / 8, p % 8 }, positions[expected.Count]);
                expected.Add(Token(i, 1 + p));
            }
        Assert.True(ExtractionData.MaxRelativeError(all, expected) < 1e-4);

        var (mean, _) = Extract(ActivationSampling.SpatialMean);
        var expectedMean = Enumerable.Range(0, n).Select(i => Enumerable.Range(0, c)
            .Select(ch => (float)Enumerable.Range(1, 64).Average(tok => Token(i, tok)[ch])).ToArray()).ToList();
        Assert.True(ExtractionData.MaxRelativeError(mean, expectedMean) < 1e-4);

        var (cls, clsPositions) = Extract(ActivationSampling.ClassToken);
        Assert.All(clsPositions, p => Assert.Equal(new[] { -2, -2 }, p));
        Assert.True(ExtractionData.MaxRelativeError(cls, Enumerable.Range(0, n).Select(i => Token(i, 0)).ToList()) < 1e-4);
    }

    [Fact]
    public void RandomPatchTokensAvoidTheBorderAndReproducePerSeed()
    {
        var ml = new MLContext(seed: 1);
        var rows = SharedData.CifarImages(20).Select(p => new ExtractionData.ImageRow { ImagePath = p.Path, Label = p.Label }).ToList();
        var images = ml.Transforms.LoadImages("Image", imageFolder: null, inputColumnName: nameof(ExtractionData.ImageRow.ImagePath))
            .Append(ml.Transforms.ResizeImages("Image", 64, 64, "Image"));
        var source = ml.Data.LoadFromEnumerable(rows);
        var data = images.Fit(source).Transform(source);
        var model = ActivationModel.FromFile(Vit.ModelPath, ImagePreprocessing.Identity);
        (List<float[]> Values, List<int[]> Positions) Extract(int seed, ActivationSampling sampling = ActivationSampling.RandomPosition)
        {
            var view = ml.Transforms.ExtractActivations(new ActivationExtractingEstimator.Options
            {
                Model = model, Layers = [Vit.LayerTensor], Sampling = sampling, Seed = seed, Margin = 0,
            }).Fit(data).Transform(data);
            return (ExtractionData.Column(view, AtlasColumnNames.Activation), ExtractionData.Positions(view));
        }
        var (values, positions) = Extract(5);
        Assert.Equal(rows.Count, positions.Count);
        // Margin 0 asked for, yet on a token layer no patch on the 8x8 grid's border is drawn; the inner 6x6 all occur.
        Assert.All(positions, p => Assert.True(p[0] is >= 1 and <= 6 && p[1] is >= 1 and <= 6, $"border token ({p[0]}, {p[1]})"));
        Assert.Equal(36, positions.Select(p => p[0] * 8 + p[1]).Distinct().Count());

        var (again, againPositions) = Extract(5);
        Assert.Equal(positions, againPositions);
        Assert.Equal(values, again);
        var (_, otherPositions) = Extract(6);
        Assert.NotEqual(positions, otherPositions);

        // Each drawn vector is the patch token at its position.
        var (grid, _) = Extract(5, ActivationSampling.AllPositions);
        var expected = positions.Select((p, i) => grid[i * 64 + p[0] * 8 + p[1]]).ToList();
        Assert.True(ExtractionData.MaxRelativeError(values, expected) < 1e-6);
    }

    [Fact]
    public void TokenExtractionSurvivesSaveAndLoad()
    {
        var input = Vit.Input;
        int n = (int)input.Shape[0], len = input.Data.Length / n;
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(Enumerable.Range(0, n).Select(i => new ExtractionData.PixelRow { Pixels = input.Data.AsSpan(i * len, len).ToArray() }));
        var model = ml.Transforms.ExtractActivations(new ActivationExtractingEstimator.Options
        {
            Model = ActivationModel.FromFile(Vit.ModelPath, ImagePreprocessing.Identity),
            Layers = [Vit.LayerTensor], InputColumnName = "Pixels", Sampling = ActivationSampling.ClassToken,
            Tokens = new TokenLayout { ClassTokens = 1 },
        }).Fit(data);
        var before = ExtractionData.Column(model.Transform(data), AtlasColumnNames.Activation);
        string path = Path.Combine(Path.GetTempPath(), $"vit-extract-{Guid.NewGuid():N}.zip");
        try
        {
            ml.Model.SaveAtlas(model, data.Schema, path);
            var loaded = (ActivationExtractingTransformer)new MLContext(seed: 2).Model.LoadAtlas(path, out _);
            Assert.Equal(ActivationSampling.ClassToken, loaded.Sampling);
            Assert.Equal(new TokenLayout { ClassTokens = 1 }, loaded.Layers[0].Tokens);
            var view = loaded.Transform(data);
            Assert.All(ExtractionData.Positions(view), p => Assert.Equal(new[] { -2, -2 }, p));
            Assert.True(ExtractionData.MaxRelativeError(ExtractionData.Column(view, AtlasColumnNames.Activation), before) < 1e-6);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void AttributionAtATokenMatchesTheAttributionGraph()
    {
        // The fixture's head is zero-initialized; give it seeded random weights so attributions are not zero.
        var network = Gradients.FixtureConformanceTests.WithRandomHead(OnnxModelIO.Load(Vit.ModelPath), "logits", seed: 3);
        var model = ActivationModel.FromBytes(OnnxModelIO.ToBytes(network), ImagePreprocessing.Identity);
        var input = Vit.Input;
        int n = (int)input.Shape[0], len = input.Data.Length / n;
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(Enumerable.Range(0, n).Select(i => new ExtractionData.PixelRow { Pixels = input.Data.AsSpan(i * len, len).ToArray() }));
        using var session = OnnxSessionFactory.Create(AttributionGraph.Build(network, Vit.LayerTensor, "logits"));
        foreach (var (sampling, token) in new[] { (ActivationSampling.ClassToken, 0), (ActivationSampling.Center, 1 + 4 * 8 + 4) })
        {
            var view = ml.Transforms.ExtractActivations(new ActivationExtractingEstimator.Options
            {
                Model = model, Layers = [Vit.LayerTensor], InputColumnName = "Pixels", Sampling = sampling,
            }).Append(ml.Transforms.ComputeAttribution(new AttributionEstimator.Options
            {
                Model = model, Layer = Vit.LayerTensor, InputColumnName = "Pixels",
            })).Fit(data).Transform(data);
            var attribution = ExtractionData.Column(view, "Attribution");
            var direct = session.RunFloat(new Dictionary<string, OnnxFloatTensor>
            {
                ["input"] = input,
                [AttributionGraph.MaskName] = GradientFixtureCheck.AttributionMask([n, 65, 128], [token]),
            })[AttributionGraph.AttributionName];
            int k = (int)direct.Shape[1];
            var expected = Enumerable.Range(0, n).Select(i => direct.Data.AsSpan(i * k, k).ToArray()).ToList();
            Assert.True(expected.Max(v => v.Max(Math.Abs)) > 0);
            Assert.True(ExtractionData.MaxRelativeError(attribution, expected) < 1e-4, $"{sampling}");
        }
    }
}
