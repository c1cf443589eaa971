using Microsoft.ML.ActivationAtlas.Gradients;
using Microsoft.ML.ActivationAtlas.Onnx;
using Microsoft.ML.ActivationAtlas.Onnx.Protobuf;
using static Microsoft.ML.ActivationAtlas.Tests.Gradients.RuleTests;

namespace Microsoft.ML.ActivationAtlas.Tests.Gradients;

/// <summary>
/// The transformer and ConvNeXt operators on single-purpose graphs: reverse mode against central finite differences
/// (<see cref="RuleTests.CheckAgainstFiniteDifferences"/>), forward mode against a finite difference along a random
/// tangent, and the float64 mode against float32 evaluation of the same graph.
/// </summary>
public sealed class TransformerRuleTests
{
    /// <summary>
    /// Max relative error of the forward-mode derivative of y along a random tangent u against (y(x + h u) - y(x - h u)) / 2h,
    /// in float32 or in the float64 mode.
    /// </summary>
    internal static double CheckJvp(ModelProto model, string x, long[] xShape, bool doublePrecision = false, Dictionary<string, OnnxFloatTensor>? others = null)
    {
        others ??= [];
        int n = (int)xShape.Aggregate(1L, (a, b) => a * b);
        var xv = Random(n, 1);
        var u = Random(n, 7);
        using var forward = OnnxSessionFactory.Create(model);
        float[] Y(float step)
        {
            var shifted = xv.Select((v, i) => v + step * u[i]).ToArray();
            return forward.RunFloat(new Dictionary<string, OnnxFloatTensor>(others) { [x] = new(shifted, xShape) })["y"].Data;
        }
        var jvp = GradientGraphBuilder.BuildJvp(model, new JvpOptions { At = x, Outputs = ["y"], DoublePrecision = doublePrecision });
        using var session = OnnxSessionFactory.Create(jvp);
        var tangent = session.RunFloat(new Dictionary<string, OnnxFloatTensor>(others) { [x] = new(xv, xShape), ["jvp_tangent"] = new(u, xShape) })["y_tangent"].Data;
        const float h = 1e-2f;
        float[] plus = Y(h), minus = Y(-h);
        double maxRef = 0, maxDiff = 0;
        for (int i = 0; i < plus.Length; i++)
        {
            double fd = ((double)plus[i] - minus[i]) / (2 * h);
            maxRef = Math.Max(maxRef, Math.Abs(fd));
            maxDiff = Math.Max(maxDiff, Math.Abs(fd - tangent[i]));
        }
        Assert.True(maxRef > 0, "the finite difference is zero everywhere: the check would be empty");
        return maxDiff / maxRef;
    }

    /// <summary>Max relative difference between the float64-mode and float32 input gradients for the same seed.</summary>
    private static double DoubleModeAgreesWithFloat32(ModelProto model, string x, long[] xShape)
    {
        int n = (int)xShape.Aggregate(1L, (a, b) => a * b);
        var feed = new Dictionary<string, OnnxFloatTensor> { [x] = new(Random(n, 1), xShape) };
        using var forward = OnnxSessionFactory.Create(model);
        var y = forward.RunFloat(feed)["y"];
        feed["vjp_seed"] = new(Random(y.Data.Length, 2), y.Shape);
        float[] Gradient(bool precise)
        {
            using var s = OnnxSessionFactory.Create(GradientGraphBuilder.BuildVjp(model, new VjpOptions { Of = "y", DoublePrecision = precise }));
            return s.RunFloat(feed)["vjp_gradient"].Data;
        }
        return GradientFixtureCheck.RelativeError(Gradient(true), Gradient(false));
    }

    private static void AssertAllModes(ModelProto model, long[] shape)
    {
        double vjp = CheckAgainstFiniteDifferences(model, "x", shape);
        double jvp = CheckJvp(model, "x", shape);
        double jvp64 = CheckJvp(model, "x", shape, doublePrecision: true);
        double modes = DoubleModeAgreesWithFloat32(model, "x", shape);
        Assert.True(vjp < 1e-3, $"reverse mode vs finite differences: {vjp}");
        Assert.True(jvp < 1e-3, $"forward mode vs finite differences: {jvp}");
        Assert.True(jvp64 < 1e-3, $"float64 forward mode vs finite differences: {jvp64}");
        Assert.True(modes < 1e-5, $"float64 vs float32 reverse mode: {modes}");
    }

    [Fact]
    public void GeluAsErfMatchesFiniteDifferences()
    {
        // GELU as PyTorch exports it: x * 0.5 * (1 + erf(x / sqrt 2)), on inputs spread over [-3, 3].
        var model = RuleTests.Model(13, b =>
        {
            string x3 = b.Node("Mul", ["x", b.Constant("three", 3f)]);
            string erf = b.Node("Erf", [b.Node("Div", [x3, b.Constant("sqrt2", MathF.Sqrt(2f))])]);
            string half = b.Node("Mul", [b.Node("Add", [erf, b.Constant("one", 1f)]), b.Constant("half", 0.5f)]);
            b.NodeWithOutputs("Mul", [x3, half], ["y"]);
        }, ("x", [2, 3, 5]));
        AssertAllModes(model, [2, 3, 5]);
    }

    [Theory]
    [InlineData(-1)]
    [InlineData(1)]
    public void LayerNormalizationOpMatchesFiniteDifferences(long axis)
    {
        // The opset-17 op with its statistics outputs requested, over the last axis or the last two.
        var model = RuleTests.Model(17, b =>
        {
            long[] normalized = axis == -1 ? [4] : [3, 4];
            int count = (int)normalized.Aggregate(1L, (p, v) => p * v);
            string scale = b.Initializer("scale", Random(count, 11).Select(v => 1f + v).ToArray(), normalized);
            string bias = b.Initializer("bias", Random(count, 12), normalized);
            b.NodeWithOutputs("LayerNormalization", ["x", scale, bias], ["y", "mean", "inv_std"],
                OnnxAttributes.Int("axis", axis), OnnxAttributes.Float("epsilon", 1e-5f));
        }, ("x", [2, 3, 4]));
        AssertAllModes(model, [2, 3, 4]);
    }

    [Fact]
    public void AttentionMatchesFiniteDifferences()
    {
        // softmax(x x^T / 2) x over [2,3,4] tokens: batched MatMul with both operands computed, softmax on the last axis,
        // then a head-broadcast MatMul with a constant [3,4,2] and a softmax over axis 1.
        var model = RuleTests.Model(13, b =>
        {
            string scores = b.Node("Div", [b.Node("MatMul", ["x", b.Node("Transpose", ["x"], OnnxAttributes.Ints("perm", 0, 2, 1))]), b.Constant("two", 2f)]);
            string mixed = b.Node("MatMul", [b.Node("Softmax", [scores], OnnxAttributes.Int("axis", -1)), "x"]);
            string heads = b.Node("Unsqueeze", [mixed, b.Vector("axis", 1)]);
            string projected = b.Node("MatMul", [heads, b.Initializer("w", Random(24, 13), 3, 4, 2)]);
            b.NodeWithOutputs("Softmax", [projected], ["y"], OnnxAttributes.Int("axis", 1));
        }, ("x", [2, 3, 4]));
        AssertAllModes(model, [2, 3, 4]);
    }

    [Fact]
    public void WhereAndReductionsMatchFiniteDifferences()
    {
        // Where with both branches differentiable, ReduceMax over one axis, ReduceL2 and ReduceSumSquare without keepdims.
        var model = RuleTests.Model(13, b =>
        {
            string picked = b.Node("Where", [b.Node("Greater", ["x", b.Constant("cut", 0.2f)]), b.Node("Mul", ["x", "x"]), b.Node("Neg", ["x"])]);
            string max = b.Node("ReduceMax", ["x"], OnnxAttributes.Ints("axes", 1), OnnxAttributes.Int("keepdims", 1));
            string l2 = b.Node("ReduceL2", ["x"], OnnxAttributes.Ints("axes", -1), OnnxAttributes.Int("keepdims", 1));
            string squares = b.Node("Unsqueeze", [b.Node("ReduceSumSquare", ["x"], OnnxAttributes.Ints("axes", 2), OnnxAttributes.Int("keepdims", 0)), b.Vector("axis", 2)]);
            b.NodeWithOutputs("Sum", [picked, max, l2, squares], ["y"]);
        }, ("x", [2, 3, 4]));
        AssertAllModes(model, [2, 3, 4]);
    }

    [Theory]
    [InlineData(0, 0)]
    [InlineData(1, 0)]
    [InlineData(0, 1)]
    [InlineData(1, 1)]
    public void AveragePoolAndDepthwiseConvWorkInFloat64Mode(int countIncludePad, int ceilMode)
    {
        // A depthwise (group = channels) 3x3 convolution, then the pooling of AveragePoolGradientMatchesFiniteDifferences.
        var model = RuleTests.Model(13, b =>
        {
            string w = b.Initializer("w", Random(18, 14), 2, 1, 3, 3);
            string conv = b.Node("Conv", ["x", w], OnnxAttributes.Int("group", 2), OnnxAttributes.Ints("pads", 1, 1, 1, 1));
            b.NodeWithOutputs("AveragePool", [conv], ["y"],
                OnnxAttributes.Ints("kernel_shape", 3, 3), OnnxAttributes.Ints("strides", 2, 2), OnnxAttributes.Ints("pads", 1, 1, 0, 0),
                OnnxAttributes.Int("count_include_pad", countIncludePad), OnnxAttributes.Int("ceil_mode", ceilMode));
        }, ("x", [1, 2, 6, 6]));
        AssertAllModes(model, [1, 2, 6, 6]);
    }
}
