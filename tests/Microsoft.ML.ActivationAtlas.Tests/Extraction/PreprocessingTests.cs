using Microsoft.ML.ActivationAtlas.Extraction;
using Microsoft.ML.ActivationAtlas.Onnx;
using Microsoft.ML.ActivationAtlas.Onnx.Protobuf;
using Microsoft.ML.Data;

namespace Microsoft.ML.ActivationAtlas.Tests.Extraction;

/// <summary>
/// Pixel preprocessing, checked through a 2 x 2 "network" whose layer is its (transposed) input, so the extracted
/// vectors are exactly the preprocessed pixels.
/// </summary>
public sealed class PreprocessingTests
{
    // Planar RGB pixel values 0..255 of a 2 x 2 image: R plane, G plane, B plane.
    private static readonly float[] s_pixels = [10, 20, 30, 40, 100, 110, 120, 130, 200, 210, 220, 255];

    private static byte[] PassThroughModel(bool interleaved)
    {
        var model = new ModelProto { IrVersion = 7, Graph = new GraphProto { Name = "pass" } };
        model.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = 13 });
        var b = new OnnxGraphBuilder(model.Graph);
        if (interleaved)
        {
            b.Input("x", "N", 2, 2, 3);
            b.Output(b.Node("Transpose", ["x"], OnnxAttributes.Ints("perm", 0, 3, 1, 2)), "N", 3, 2, 2);
        }
        else
        {
            b.Input("x", "N", 3, 2, 2);
            b.Output(b.Node("Identity", ["x"]), "N", 3, 2, 2);
        }
        return OnnxModelIO.ToBytes(model);
    }

    private static List<float[]> Extract(ImagePreprocessing preprocessing, bool interleaved)
    {
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(new[] { new ExtractionData.PixelRow { Pixels = s_pixels } });
        var net = ActivationModel.FromBytes(PassThroughModel(interleaved), preprocessing);
        string layer = interleaved ? "transpose_out" : "identity_out";
        var view = ml.Transforms.ExtractActivations(new ActivationExtractingEstimator.Options
        {
            Model = net,
            Layers = [layer],
            InputColumnName = "Pixels",
            Sampling = ActivationSampling.AllPositions,
        }).Fit(data).Transform(data);
        return ExtractionData.Column(view, AtlasColumnNames.Activation);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void MeanStdRangeAndChannelOrderAreAppliedPerChannel(bool interleaved)
    {
        var p = new ImagePreprocessing { Mean = [0.5f, 0.4f, 0.3f], Std = [0.2f, 0.25f, 0.5f], ChannelOrder = ChannelOrder.Bgr, Planar = !interleaved };
        var rows = Extract(p, interleaved);
        Assert.Equal(4, rows.Count); // one row per position of the 2 x 2 grid
        for (int pos = 0; pos < 4; pos++)
        {
            float r = s_pixels[pos], g = s_pixels[4 + pos], b = s_pixels[8 + pos];
            var expected = new[] { (b / 255f - 0.3f) / 0.5f, (g / 255f - 0.4f) / 0.25f, (r / 255f - 0.5f) / 0.2f };
            for (int c = 0; c < 3; c++)
                Assert.Equal(expected[c], rows[pos][c], 5);
        }
    }

    [Fact]
    public void InceptionRangeMapsPixelsOntoMinus117To138()
    {
        var rows = Extract(ImagePreprocessing.InceptionV1, interleaved: false);
        Assert.Equal(10 - 117f, rows[0][0], 4);
        Assert.Equal(255 - 117f, rows[3][2], 4);
        Assert.Equal(100 - 117f, rows[0][1], 4);
    }

    [Fact]
    public void ImagesOfBothByteOrdersConvertAlike()
    {
        var converter = new PixelConverter(ImagePreprocessing.Identity, 1, 2);
        byte[] bgra = [30, 20, 10, 255, 60, 50, 40, 255];
        byte[] rgba = [10, 20, 30, 255, 40, 50, 60, 255];
        using var a = MLImage.CreateFromPixels(2, 1, MLPixelFormat.Bgra32, bgra);
        using var b = MLImage.CreateFromPixels(2, 1, MLPixelFormat.Rgba32, rgba);
        var x = new float[6];
        var y = new float[6];
        Assert.Null(converter.FromImage(a, x));
        Assert.Null(converter.FromImage(b, y));
        Assert.Equal(new float[] { 10, 40, 20, 50, 30, 60 }, x);
        Assert.Equal(x, y);
        Assert.Contains("2x1", new PixelConverter(ImagePreprocessing.Identity, 2, 2).FromImage(a, new float[12]));
        Assert.Throws<ArgumentException>(() => new PixelConverter(new ImagePreprocessing { Std = [1, 0, 1] }, 1, 1));
    }

    [Fact]
    public void PreprocessingModelRunsBeforeTheNetworkEvenWithAnotherOpsetVersion()
    {
        // Preprocessing at opset 8 (x * 2 - 1), network at opset 13: they cannot be fused, so two sessions run.
        var pre = new ModelProto { IrVersion = 3, Graph = new GraphProto { Name = "pre" } };
        pre.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = 8 });
        var b = new OnnxGraphBuilder(pre.Graph);
        b.Input("raw", 1, 3, 2, 2);
        string doubled = b.Node("Mul", ["raw", b.Constant("two", 2f)]);
        b.Output(b.Node("Sub", [doubled, b.Constant("one", 1f)]), 1, 3, 2, 2);

        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(new[] { new ExtractionData.PixelRow { Pixels = s_pixels } });
        var net = ActivationModel.FromBytes(PassThroughModel(interleaved: false), ImagePreprocessing.Identity, OnnxModelIO.ToBytes(pre));
        var view = ml.Transforms.ExtractActivations(new ActivationExtractingEstimator.Options
        {
            Model = net,
            Layers = ["identity_out"],
            InputColumnName = "Pixels",
            Sampling = ActivationSampling.AllPositions,
        }).Fit(data).Transform(data);
        var rows = ExtractionData.Column(view, AtlasColumnNames.Activation);
        for (int pos = 0; pos < 4; pos++)
            for (int c = 0; c < 3; c++)
                Assert.Equal(s_pixels[c * 4 + pos] * 2 - 1, rows[pos][c], 4);
    }

    [Fact]
    public void EstimatorReportsTheOutputSchemaShape()
    {
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(new[] { new ExtractionData.PixelRow { Pixels = s_pixels } });
        var estimator = ml.Transforms.ExtractActivations(new ActivationExtractingEstimator.Options
        {
            Model = ActivationModel.FromBytes(PassThroughModel(interleaved: false), ImagePreprocessing.Identity),
            Layers = ["identity_out"],
            InputColumnName = "Pixels",
            Sampling = ActivationSampling.Center,
        });
        var shape = estimator.GetOutputSchema(Common.SchemaShapes.FromSchema(data.Schema));
        var acts = shape.Single(c => c.Name == AtlasColumnNames.Activation);
        Assert.Equal(SchemaShape.Column.VectorKind.Vector, acts.Kind);
        Assert.Equal(NumberDataViewType.Single, acts.ItemType);
        var pos = shape.Single(c => c.Name == "Position");
        Assert.Equal(NumberDataViewType.Int32, pos.ItemType);
        Assert.Contains(shape, c => c.Name == "Pixels");
        Assert.Equal((2, 2), estimator.ImageSize);
    }
}
