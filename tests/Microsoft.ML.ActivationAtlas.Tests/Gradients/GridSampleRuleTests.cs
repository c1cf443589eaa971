using Microsoft.ML.ActivationAtlas.Gradients;
using Microsoft.ML.ActivationAtlas.Onnx;
using static Microsoft.ML.ActivationAtlas.Tests.Gradients.RuleTests;

namespace Microsoft.ML.ActivationAtlas.Tests.Gradients;

/// <summary>
/// GridSample with respect to its image: reverse mode against central finite differences of every image element and
/// forward mode against finite differences along a random tangent, for both align_corners settings and both
/// supported paddings, with grids that reach outside the image (taps that read zeros or clamp to the border).
/// </summary>
public sealed class GridSampleRuleTests
{
    private static readonly long[] XShape = [2, 3, 5, 6];
    private static readonly long[] GridShape = [2, 4, 7, 2];

    private static Microsoft.ML.ActivationAtlas.Onnx.Protobuf.ModelProto Model(int alignCorners, string padding) =>
        RuleTests.Model(16, b => b.NodeWithOutputs("GridSample", ["x", "grid"], ["y"], OnnxAttributes.String("mode", "bilinear"),
            OnnxAttributes.String("padding_mode", padding), OnnxAttributes.Int("align_corners", alignCorners)), ("x", XShape), ("grid", GridShape));

    // Normalised coordinates in [-1.3, 1.3]: some samples fall outside the image.
    private static OnnxFloatTensor Grid() => new(RuleTests.Random(2 * 4 * 7 * 2, 11, 1.3f), GridShape);

    [Theory]
    [InlineData(0, "zeros")]
    [InlineData(1, "zeros")]
    [InlineData(0, "border")]
    [InlineData(1, "border")]
    public void ReverseModeMatchesFiniteDifferences(int alignCorners, string padding)
    {
        double error = CheckAgainstFiniteDifferences(Model(alignCorners, padding), "x", XShape, new() { ["grid"] = Grid() });
        Assert.True(error < 1e-3, $"relative error {error:E2}");
    }

    [Theory]
    [InlineData(0, "zeros")]
    [InlineData(1, "border")]
    public void ForwardModeMatchesFiniteDifferences(int alignCorners, string padding)
    {
        double error = TransformerRuleTests.CheckJvp(Model(alignCorners, padding), "x", XShape, others: new() { ["grid"] = Grid() });
        Assert.True(error < 1e-3, $"relative error {error:E2}");
    }

    [Fact]
    public void AGridThatDependsOnTheImageIsRefusedWithTheNodeNamed()
    {
        // grid = tanh(mean of x over channels...) reshaped: the sampling positions move with the image.
        var model = RuleTests.Model(16, b =>
        {
            string g = b.Node("Reshape", [b.Node("Tanh", [b.Node("Slice", ["x", b.Vector("s", 0), b.Vector("e", 1), b.Vector("a", 1)])]), b.Vector("shape", 2, 5, 3, 2)]);
            b.NodeWithOutputs("GridSample", ["x", g], ["y"]);
        }, ("x", XShape));
        var e = Assert.Throws<UnsupportedOperatorException>(() => GradientGraphBuilder.BuildVjp(model, new VjpOptions { Of = "y", WithRespectTo = "x" }));
        Assert.Contains("GridSample", e.Message);
        Assert.Contains("grid", e.Message);
    }
}
