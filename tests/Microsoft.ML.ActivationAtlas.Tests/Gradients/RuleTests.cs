using Microsoft.ML.ActivationAtlas.Gradients;
using Microsoft.ML.ActivationAtlas.Onnx;
using Microsoft.ML.ActivationAtlas.Onnx.Protobuf;

namespace Microsoft.ML.ActivationAtlas.Tests.Gradients;

/// <summary>
/// Single-operator graphs: reverse mode against central finite differences in float64 sums (pooling with both
/// count_include_pad settings and ceil mode, broadcasting arithmetic, softmax, LRN), the options (max-pool
/// relaxation, ReLU redirection), objectives, and the unsupported-operator error.
/// </summary>
public sealed class RuleTests
{
    internal static ModelProto Model(int opset, Action<OnnxGraphBuilder> build, params (string Name, long[] Shape)[] inputs)
    {
        var m = new ModelProto { IrVersion = 8, Graph = new GraphProto { Name = "g" } };
        m.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = opset });
        foreach (var (name, shape) in inputs)
            m.Graph.Input.Add(OnnxValueInfo.Float(name, shape.Cast<object?>().ToArray()));
        build(new OnnxGraphBuilder(m.Graph));
        m.Graph.Output.Add(OnnxValueInfo.Float("y"));
        return m;
    }

    internal static float[] Random(int n, int seed, float scale = 1f)
    {
        var rng = new Random(seed);
        return Enumerable.Range(0, n).Select(_ => (float)(rng.NextDouble() * 2 - 1) * scale).ToArray();
    }

    /// <summary>Max relative error of the VJP of y w.r.t. x (other inputs fixed) against central differences.</summary>
    internal static double CheckAgainstFiniteDifferences(ModelProto model, string x, long[] xShape, Dictionary<string, OnnxFloatTensor>? others = null)
    {
        others ??= [];
        int n = (int)xShape.Aggregate(1L, (a, b) => a * b);
        var xv = Random(n, 1);
        using var forward = OnnxSessionFactory.Create(model);
        Dictionary<string, OnnxFloatTensor> Feed(float[] values) => new(others) { [x] = new(values, xShape) };
        var y = forward.RunFloat(Feed(xv))["y"];
        var seed = Random(y.Data.Length, 2);
        var vjp = GradientGraphBuilder.BuildVjp(model, new VjpOptions { Of = "y", WithRespectTo = x });
        using var session = OnnxSessionFactory.Create(vjp);
        var feed = Feed(xv);
        feed["vjp_seed"] = new(seed, y.Shape);
        var grad = session.RunFloat(feed)["vjp_gradient"].Data;
        double maxRef = 0, maxDiff = 0;
        const float h = 1e-2f;
        for (int i = 0; i < n; i++)
        {
            double Obj(float d)
            {
                var shifted = (float[])xv.Clone();
                shifted[i] += d;
                var r = forward.RunFloat(Feed(shifted))["y"].Data;
                double s = 0;
                for (int j = 0; j < r.Length; j++) s += (double)r[j] * seed[j];
                return s;
            }
            double fd = (Obj(h) - Obj(-h)) / (2 * h);
            maxRef = Math.Max(maxRef, Math.Abs(fd));
            maxDiff = Math.Max(maxDiff, Math.Abs(fd - grad[i]));
        }
        return maxDiff / maxRef;
    }

    [Theory]
    [InlineData(0, 0)]
    [InlineData(1, 0)]
    [InlineData(0, 1)]
    [InlineData(1, 1)]
    public void AveragePoolGradientMatchesFiniteDifferences(int countIncludePad, int ceilMode)
    {
        var model = Model(13, b => b.NodeWithOutputs("AveragePool", ["x"], ["y"],
            OnnxAttributes.Ints("kernel_shape", 3, 3), OnnxAttributes.Ints("strides", 2, 2), OnnxAttributes.Ints("pads", 1, 1, 0, 0),
            OnnxAttributes.Int("count_include_pad", countIncludePad), OnnxAttributes.Int("ceil_mode", ceilMode)), ("x", [1, 2, 6, 6]));
        Assert.True(CheckAgainstFiniteDifferences(model, "x", [1, 2, 6, 6]) < 1e-3);
    }

    // kernel h, w; stride; dilation; pads (top, left, bottom, right); group; input height, width. Stride-1 ungrouped
    // convolutions take the flipped-kernel Conv for their input gradient, the others ConvTranspose (with the largest
    // output padding, cropped to the input): all against finite differences, strided ones with 7x7, 3x3, 2x2 and 1x1
    // kernels, asymmetric pads, dilation and odd and even input sizes, so that every output padding and crop is met.
    [Theory]
    [InlineData(3, 3, 1, 1, 1, 1, 1, 1, 1, false, 7, 6)]
    [InlineData(3, 3, 1, 1, 0, 0, 0, 0, 1, false, 7, 6)]
    [InlineData(5, 3, 1, 1, 2, 0, 1, 2, 1, false, 7, 6)]
    [InlineData(3, 3, 1, 2, 2, 2, 2, 2, 1, false, 7, 6)]
    [InlineData(1, 1, 1, 1, 0, 0, 0, 0, 1, false, 7, 6)]
    [InlineData(3, 3, 1, 1, 1, 1, 1, 1, 2, true, 7, 6)]
    [InlineData(3, 3, 2, 1, 1, 1, 1, 1, 2, true, 7, 6)]
    [InlineData(3, 3, 2, 1, 1, 1, 1, 1, 1, true, 7, 6)]
    [InlineData(3, 3, 2, 1, 1, 1, 1, 1, 1, true, 8, 9)]
    [InlineData(3, 3, 2, 1, 2, 0, 1, 2, 1, true, 7, 6)]
    [InlineData(3, 3, 2, 1, 0, 1, 0, 0, 1, true, 8, 9)]
    [InlineData(7, 7, 2, 1, 3, 3, 3, 3, 1, true, 8, 9)]
    [InlineData(7, 7, 2, 1, 3, 3, 3, 3, 1, true, 11, 10)]
    [InlineData(7, 7, 2, 1, 2, 3, 4, 1, 1, true, 11, 10)]
    [InlineData(1, 1, 2, 1, 0, 0, 0, 0, 1, true, 7, 6)]
    [InlineData(1, 1, 2, 1, 0, 0, 0, 0, 1, true, 8, 9)]
    [InlineData(1, 1, 2, 1, 1, 0, 0, 1, 1, true, 8, 9)]
    [InlineData(3, 3, 2, 2, 2, 2, 2, 2, 1, true, 7, 6)]
    [InlineData(3, 3, 2, 3, 1, 2, 3, 0, 1, true, 8, 9)]
    [InlineData(5, 3, 3, 1, 2, 1, 0, 1, 1, true, 8, 9)]
    [InlineData(2, 2, 2, 1, 0, 0, 0, 0, 1, true, 8, 9)]
    public void ConvInputGradientMatchesFiniteDifferences(int kh, int kw, int stride, int dilation, int top, int left, int bottom, int right, int group, bool transposed, int height, int width)
    {
        const int ci = 4, co = 6;
        var weights = Random(co * ci / group * kh * kw, 5, 0.5f);
        long[] shape = [2, ci, height, width];
        var model = Model(13, b => b.NodeWithOutputs("Conv", ["x", b.Initializer("w", weights, co, ci / group, kh, kw)], ["y"],
            OnnxAttributes.Ints("kernel_shape", kh, kw), OnnxAttributes.Ints("strides", stride, stride), OnnxAttributes.Ints("dilations", dilation, dilation),
            OnnxAttributes.Ints("pads", top, left, bottom, right), OnnxAttributes.Int("group", group)), ("x", shape));
        Assert.True(CheckAgainstFiniteDifferences(model, "x", shape) < 1e-3);
        var vjp = GradientGraphBuilder.BuildVjp(model, new VjpOptions { Of = "y", WithRespectTo = "x" });
        Assert.Equal(transposed, vjp.Graph.Node.Any(n => n.OpType == "ConvTranspose"));
    }

    // Strided input gradients on a graph whose input size is known only when it runs: one graph serves odd and even
    // sizes (the crop follows the input's shape), against finite differences and equal to the graph built for each size.
    [Theory]
    [InlineData(7, 3, 2)]
    [InlineData(3, 1, 2)]
    [InlineData(1, 0, 2)]
    [InlineData(3, 1, 3)]
    public void StridedConvInputGradientServesEveryInputSize(int k, int pad, int stride)
    {
        const int ci = 3, co = 5;
        var weights = Random(co * ci * k * k, 7, 0.5f);
        var model = Model(13, b => b.NodeWithOutputs("Conv", ["x", b.Initializer("w", weights, co, ci, k, k)], ["y"],
            OnnxAttributes.Ints("kernel_shape", k, k), OnnxAttributes.Ints("strides", stride, stride), OnnxAttributes.Ints("pads", pad, pad, pad, pad)), ("x", [1, ci, 9, 8]));
        model.Graph.Input[0] = OnnxValueInfo.Float("x", "batch", ci, "height", "width");
        var vjp = GradientGraphBuilder.BuildVjp(model, new VjpOptions { Of = "y", WithRespectTo = "x" });
        using var session = OnnxSessionFactory.Create(vjp);
        using var forward = OnnxSessionFactory.Create(model);
        foreach (var (h, w) in new[] { (9, 8), (10, 11), (12, 12) })
        {
            long[] shape = [1, ci, h, w];
            Assert.True(CheckAgainstFiniteDifferences(Sized(model, shape), "x", shape) < 1e-3);
            var x = new OnnxFloatTensor(Random(ci * h * w, 3), shape);
            var y = forward.RunFloat(new Dictionary<string, OnnxFloatTensor> { ["x"] = x })["y"];
            var seed = new OnnxFloatTensor(Random(y.Data.Length, 4), y.Shape);
            var dynamicGradient = session.RunFloat(new Dictionary<string, OnnxFloatTensor> { ["x"] = x, ["vjp_seed"] = seed })["vjp_gradient"];
            using var fixedSession = OnnxSessionFactory.Create(GradientGraphBuilder.BuildVjp(Sized(model, shape), new VjpOptions { Of = "y", WithRespectTo = "x" }));
            var fixedGradient = fixedSession.RunFloat(new Dictionary<string, OnnxFloatTensor> { ["x"] = x, ["vjp_seed"] = seed })["vjp_gradient"];
            Assert.Equal(shape, dynamicGradient.Shape);
            Assert.Equal(fixedGradient.Data, dynamicGradient.Data);
        }
        // Where the input size is known when the graph is built, the transposed convolution's output padding gives that
        // size exactly; otherwise it is cropped to the input's shape when it runs.
        Assert.Contains(vjp.Graph.Node, n => n.OpType == "Slice");
        foreach (var shape in new long[][] { [1, ci, 9, 8], [1, ci, 10, 11] })
            Assert.DoesNotContain(GradientGraphBuilder.BuildVjp(Sized(model, shape), new VjpOptions { Of = "y", WithRespectTo = "x" }).Graph.Node, n => n.OpType == "Slice");

        static ModelProto Sized(ModelProto model, long[] shape)
        {
            var m = model.Clone();
            m.Graph.Input[0] = OnnxValueInfo.Float("x", shape.Cast<object?>().ToArray());
            return m;
        }
    }

    // Gather of one constant index and Slice with steps of 1 (starts constant or computed) put the gradient back with a Pad; other
    // index sets (repeated indices accumulate) and steps scatter through flat indices. Both against finite differences.
    [Theory]
    [InlineData("gather", 1L, 1L, true)]
    [InlineData("gather", -1L, -1L, true)]
    [InlineData("gather", 0L, 0L, true)]
    [InlineData("gather-vector1", 2L, 1L, true)]
    [InlineData("gather-repeated", 0L, 1L, false)]
    [InlineData("slice", 1L, 2L, true)]
    [InlineData("slice-negative", -3L, -1L, true)]
    [InlineData("slice-no-axes", 1L, 0L, true)]
    [InlineData("slice-beyond", 7L, 2L, true)]
    [InlineData("slice-step", 0L, 1L, false)]
    [InlineData("slice-runtime", 0L, 2L, true)]
    public void GatherAndSliceGradientsPutTheGradientBack(string kind, long start, long axis, bool padded)
    {
        long[] shape = [2, 4, 5];
        var model = Model(13, b =>
        {
            string y = kind switch
            {
                "gather" => b.Node("Gather", ["x", b.Initializer("i", new long[] { start })], OnnxAttributes.Int("axis", axis)),
                "gather-vector1" => b.Node("Gather", ["x", b.Initializer("i", new long[] { start }, 1)], OnnxAttributes.Int("axis", axis)),
                "gather-repeated" => b.Node("Gather", ["x", b.Initializer("i", new long[] { 0, 2, 0 }, 3)], OnnxAttributes.Int("axis", axis)),
                "slice" => b.Node("Slice", ["x", b.Vector("s", start), b.Vector("e", 4), b.Vector("a", axis)]),
                "slice-negative" => b.Node("Slice", ["x", b.Vector("s", start, 1), b.Vector("e", long.MaxValue, 3), b.Vector("a", axis, 1)]),
                "slice-no-axes" => b.Node("Slice", ["x", b.Vector("s", start, 0, 2), b.Vector("e", 2, 3, 5)]),
                "slice-beyond" => b.Node("Slice", ["x", b.Vector("s", start, 0), b.Vector("e", 9, 4), b.Vector("a", axis, 1)]),
                // Starts computed when the graph runs, as attention's query, key and value slices are: half the axis.
                "slice-runtime" => b.Node("Slice", ["x", b.Node("Div", [b.Node("Gather", [b.Node("Shape", ["x"]), b.Vector("ax", axis)], OnnxAttributes.Int("axis", 0)), b.Vector("two", 2)]),
                    b.Vector("e", long.MaxValue), b.Vector("a", axis)]),
                _ => b.Node("Slice", ["x", b.Vector("s", start), b.Vector("e", 5), b.Vector("a", axis), b.Vector("st", 2)]),
            };
            // A non-linear use, so that the gradient differs from one position to the next.
            b.NodeWithOutputs("Mul", [y, y], ["y"]);
        }, ("x", shape));
        if (kind != "slice-beyond")
            Assert.True(CheckAgainstFiniteDifferences(model, "x", shape) < 1e-3);
        var vjp = GradientGraphBuilder.BuildVjp(model, new VjpOptions { Of = "y", WithRespectTo = "x" });
        Assert.Equal(padded, vjp.Graph.Node.Any(n => n.OpType == "Pad"));
        Assert.Equal(!padded, vjp.Graph.Node.Any(n => n.OpType == "ScatterElements" && n.Input.Count == 3 && OnnxAttributes.GetString(n, "reduction", "none") == "add"));
        if (kind == "slice-beyond")
        {
            // An empty slice: the gradient is zeros of the input's shape.
            using var session = OnnxSessionFactory.Create(vjp);
            var x = new OnnxFloatTensor(Random(40, 3), shape);
            using var forward = OnnxSessionFactory.Create(model);
            var y = forward.RunFloat(new Dictionary<string, OnnxFloatTensor> { ["x"] = x })["y"];
            Assert.Empty(y.Data);
            var gradient = session.RunFloat(new Dictionary<string, OnnxFloatTensor> { ["x"] = x, ["vjp_seed"] = new(y.Data, y.Shape) })["vjp_gradient"];
            Assert.Equal(shape, gradient.Shape);
            Assert.All(gradient.Data, v => Assert.Equal(0f, v));
        }
    }

    // Pow with a constant exponent (a square is 2x, no Pow pass; others e x^(e-1)) and with one computed when the graph
    // runs, in both modes, against finite differences; inputs kept positive for the fractional exponent.
    [Theory]
    [InlineData(2f, false)]
    [InlineData(3f, false)]
    [InlineData(0.5f, false)]
    [InlineData(1f, false)]
    [InlineData(2f, true)]
    public void PowGradientsMatchFiniteDifferences(float exponent, bool computed)
    {
        long[] shape = [2, 3, 4];
        var model = Model(13, b =>
        {
            string positive = b.Node("Add", [b.Node("Mul", ["x", "x"]), b.Constant("c", 0.5f)]);
            string e = computed ? b.Node("Add", [b.Constant("e0", exponent - 1f), b.Constant("one", 1f)]) : b.Constant("e", exponent);
            b.NodeWithOutputs("Pow", [positive, e], ["y"]);
        }, ("x", shape));
        Assert.True(CheckAgainstFiniteDifferences(model, "x", shape) < 1e-3);
        var vjp = GradientGraphBuilder.BuildVjp(model, new VjpOptions { Of = "y", WithRespectTo = "x" });
        int pows = vjp.Graph.Node.Count(n => n.OpType == "Pow");
        Assert.Equal(exponent is 2f or 1f && !computed ? 1 : 2, pows); // the forward's, and the derivative's where it needs one
        var jvp = GradientGraphBuilder.BuildJvp(model, new JvpOptions { At = "x", Outputs = ["y"] });
        var x = new OnnxFloatTensor(Random(24, 8), shape);
        var v = new OnnxFloatTensor(Random(24, 9), shape);
        using var jvpSession = OnnxSessionFactory.Create(jvp);
        var tangent = jvpSession.RunFloat(new Dictionary<string, OnnxFloatTensor> { ["x"] = x, ["jvp_tangent"] = v })["y_tangent"];
        using var forward = OnnxSessionFactory.Create(model);
        const float h = 1e-3f;
        var plus = forward.RunFloat(new Dictionary<string, OnnxFloatTensor> { ["x"] = new(x.Data.Zip(v.Data, (a, d) => a + h * d).ToArray(), shape) })["y"];
        var minus = forward.RunFloat(new Dictionary<string, OnnxFloatTensor> { ["x"] = new(x.Data.Zip(v.Data, (a, d) => a - h * d).ToArray(), shape) })["y"];
        for (int i = 0; i < tangent.Data.Length; i++)
            Assert.True(Math.Abs(tangent.Data[i] - (plus.Data[i] - minus.Data[i]) / (2 * h)) <= 2e-2 * (1 + Math.Abs(tangent.Data[i])), $"tangent {i}");
    }

    [Fact]
    public void BroadcastingArithmeticReducesOverBroadcastAxes()
    {
        // y = (x * s + x) / (s + 2) - s, with s [1,3,1,1] broadcast over x [2,3,2,2]: both gradients checked.
        var model = Model(13, b =>
        {
            string p = b.Node("Mul", ["x", "s"]);
            string q = b.Node("Add", [p, "x"]);
            string d = b.Node("Add", ["s", b.Constant("two", 2f)]);
            b.NodeWithOutputs("Sub", [b.Node("Div", [q, d]), "s"], ["y"]);
        }, ("x", [2, 3, 2, 2]), ("s", [1, 3, 1, 1]));
        var s = new OnnxFloatTensor(Random(3, 5), [1, 3, 1, 1]);
        var x = new OnnxFloatTensor(Random(24, 6), [2, 3, 2, 2]);
        Assert.True(CheckAgainstFiniteDifferences(model, "x", [2, 3, 2, 2], new() { ["s"] = s }) < 1e-3);
        Assert.True(CheckAgainstFiniteDifferences(model, "s", [1, 3, 1, 1], new() { ["x"] = x }) < 1e-3);
        // x is never broadcast, and the shapes say so before the graph runs: its gradient sums over nothing; s's sums
        // where s was broadcast.
        static int Reductions(ModelProto m, string wrt)
            => GradientGraphBuilder.BuildVjp(m, new VjpOptions { Of = "y", WithRespectTo = wrt }).Graph.Node.Count(n => n.OpType == "ReduceSum");
        Assert.Equal(0, Reductions(model, "x"));
        Assert.Equal(3, Reductions(model, "s")); // in Mul, Div and Sub; not in s + 2, whose output has s's shape
        model.Graph.Input[0] = OnnxValueInfo.Float("x", "batch", 3, 2, 2);
        Assert.Equal(0, Reductions(model, "x"));
        model.Graph.Input[0] = OnnxValueInfo.Float("x", "batch", 3, "height", 2);
        Assert.Equal(0, Reductions(model, "x"));
    }

    [Fact]
    public void SoftmaxLrnAndSigmoidGradientsMatchFiniteDifferences()
    {
        var model = Model(13, b =>
        {
            string l = b.Node("LRN", ["x"], OnnxAttributes.Int("size", 3), OnnxAttributes.Float("alpha", 0.5f), OnnxAttributes.Float("beta", 0.75f), OnnxAttributes.Float("bias", 1f));
            string s = b.Node("Sigmoid", [l]);
            b.NodeWithOutputs("Softmax", [s], ["y"], OnnxAttributes.Int("axis", 1));
        }, ("x", [1, 5, 2, 2]));
        Assert.True(CheckAgainstFiniteDifferences(model, "x", [1, 5, 2, 2]) < 1e-3);
    }

    [Fact]
    public void MaxPoolRelaxationSpreadsTheGradientOverTheWindow()
    {
        var model = Model(13, b => b.NodeWithOutputs("MaxPool", ["x"], ["y"], OnnxAttributes.Ints("kernel_shape", 2, 2), OnnxAttributes.Ints("strides", 2, 2)), ("x", [1, 1, 2, 2]));
        var vjp = GradientGraphBuilder.BuildVjp(model, new VjpOptions { Of = "y", MaxPoolRelaxation = true });
        using var s = OnnxSessionFactory.Create(vjp);
        var g = s.RunFloat(new Dictionary<string, OnnxFloatTensor> { ["x"] = new([1, 4, 2, 3], [1, 1, 2, 2]), ["vjp_seed"] = new([8], [1, 1, 1, 1]) })["vjp_gradient"];
        Assert.Equal([2f, 2f, 2f, 2f], g.Data);
        var exact = GradientGraphBuilder.BuildVjp(model, new VjpOptions { Of = "y" });
        using var e = OnnxSessionFactory.Create(exact);
        var ge = e.RunFloat(new Dictionary<string, OnnxFloatTensor> { ["x"] = new([1, 4, 2, 3], [1, 1, 2, 2]), ["vjp_seed"] = new([8], [1, 1, 1, 1]) })["vjp_gradient"];
        Assert.Equal([0f, 8f, 0f, 0f], ge.Data);
    }

    [Fact]
    public void ReluRedirectionLetsGradientThroughDeadUnitsOnlyUpwards()
    {
        var model = Model(13, b => b.NodeWithOutputs("Relu", ["x"], ["y"]), ("x", [2, 3]));
        var vjp = GradientGraphBuilder.BuildVjp(model, new VjpOptions { Of = "y", ReluRedirection = true });
        using var s = OnnxSessionFactory.Create(vjp);
        // Example 0: all inputs negative, so nothing passes the plain ReLU gradient: redirected, except the unit
        // whose gradient would push it lower. Example 1: one unit is alive, so the plain gradient is kept.
        var g = s.RunFloat(new Dictionary<string, OnnxFloatTensor>
        {
            ["x"] = new([-1, -2, -3, 1, -2, -3], [2, 3]),
            ["vjp_seed"] = new([0.5f, -0.5f, 2f, 1f, 1f, 1f], [2, 3]),
        })["vjp_gradient"];
        Assert.Equal([0.5f, 0f, 2f, 1f, 0f, 0f], g.Data);
    }

    [Fact]
    public void ObjectivesReturnValueAndGradient()
    {
        var model = Model(13, b => b.NodeWithOutputs("Identity", ["x"], ["y"]), ("x", [1, 2, 3, 3]));
        var x = Random(18, 3);
        float[] direction = [0.6f, -0.8f];
        var vjp = GradientGraphBuilder.BuildVjp(model, new VjpOptions { Of = "y", Objective = FeatureObjective.DirectionCosine(direction, cosinePower: 2, cosineFloor: -1f, y: 1, x: 2) });
        using var s = OnnxSessionFactory.Create(vjp);
        var r = s.RunFloat(new Dictionary<string, OnnxFloatTensor> { ["x"] = new(x, [1, 2, 3, 3]) });
        float h0 = x[0 * 9 + 1 * 3 + 2], h1 = x[1 * 9 + 1 * 3 + 2];
        double dot = h0 * 0.6 + h1 * -0.8, norm = Math.Sqrt(h0 * h0 + h1 * h1);
        double cos = dot / (norm * 1.0 + 1e-4);
        Assert.Equal(dot * cos * cos, r["vjp_objective"].Data[0], 4);
        // Only the chosen position gets a gradient.
        var g = r["vjp_gradient"].Data;
        Assert.Equal(16, g.Count(v => v == 0f));

        var channel = GradientGraphBuilder.BuildVjp(model, new VjpOptions { Of = "y", Objective = FeatureObjective.Channel(1) });
        using var cs = OnnxSessionFactory.Create(channel);
        var c = cs.RunFloat(new Dictionary<string, OnnxFloatTensor> { ["x"] = new(x, [1, 2, 3, 3]) });
        Assert.Equal(x.Skip(9).Average(), c["vjp_objective"].Data[0], 5);
        Assert.All(c["vjp_gradient"].Data.Take(9), v => Assert.Equal(0f, v));
        Assert.All(c["vjp_gradient"].Data.Skip(9), v => Assert.Equal(1f / 9, v, 6));
    }

    [Fact]
    public void UnsupportedOperatorIsNamedWithItsNode()
    {
        var model = Model(13, b => b.NodeWithOutputs("Cos", ["x"], ["y"]), ("x", [1, 2]));
        model.Graph.Node[0].Name = "my_cos";
        var e = Assert.Throws<UnsupportedOperatorException>(() => GradientGraphBuilder.BuildVjp(model, new VjpOptions { Of = "y" }));
        Assert.Equal("Cos", e.OpType);
        Assert.Equal("my_cos", e.NodeName);
        Assert.Contains("my_cos", e.Message);
        Assert.Equal(["Cos"], GradientGraphBuilder.FindUnsupportedOperators(model, "x", ["y"]));
    }

    [Fact]
    public void WhiteningMatrixIsAppliedToTheDirection()
    {
        var model = Model(13, b => b.NodeWithOutputs("Identity", ["x"], ["y"]), ("x", [2, 2, 3, 3]));
        var x = Random(36, 4);
        float Objective(FeatureObjective objective)
        {
            var vjp = GradientGraphBuilder.BuildVjp(model, new VjpOptions { Of = "y", Objective = objective });
            using var s = OnnxSessionFactory.Create(vjp);
            return s.RunFloat(new Dictionary<string, OnnxFloatTensor> { ["x"] = new(x, [2, 2, 3, 3]) })["vjp_objective"].Data[1];
        }
        // direction x S with S = [[2, 1], [0, 0.5]] is [2*1 + 0*3, 1*1 + 0.5*3] = [2, 2.5] for direction [1, 3].
        float whitened = Objective(FeatureObjective.Direction([1f, 3f], [2f, 1f, 0f, 0.5f]));
        float plain = Objective(FeatureObjective.Direction([2f, 2.5f]));
        Assert.Equal(plain, whitened, 5);
        double expected = Enumerable.Range(0, 9).Average(p => 2.0 * x[18 + p] + 2.5 * x[27 + p]);
        Assert.Equal(expected, plain, 4);
    }

    [Fact]
    public void ClassNamesComeFromOptionLabelsFileOrMetadata()
    {
        var model = Model(13, b => b.NodeWithOutputs("Identity", ["x"], ["y"]), ("x", [1, 3]));
        Assert.Equal(["class_0", "class_1", "class_2"], Microsoft.ML.ActivationAtlas.Attribution.ClassNames.Resolve(model, 3, null, null));
        Microsoft.ML.ActivationAtlas.Attribution.ClassNames.Write(model, ["cat", "dog", "ship"]);
        Assert.Equal(["cat", "dog", "ship"], Microsoft.ML.ActivationAtlas.Attribution.ClassNames.Resolve(model, 3, null, null));
        string labels = Path.Combine(Path.GetTempPath(), $"labels-{Guid.NewGuid():N}.txt");
        File.WriteAllLines(labels, ["a", "b", "c", ""]);
        try
        {
            Assert.Equal(["a", "b", "c"], Microsoft.ML.ActivationAtlas.Attribution.ClassNames.Resolve(model, 3, null, labels));
            var e = Assert.Throws<ArgumentException>(() => Microsoft.ML.ActivationAtlas.Attribution.ClassNames.Resolve(model, 4, null, labels));
            Assert.Contains(labels, e.Message);
        }
        finally
        {
            File.Delete(labels);
        }
        Assert.Equal(["x", "y", "z"], Microsoft.ML.ActivationAtlas.Attribution.ClassNames.Resolve(model, 3, ["x", "y", "z"], null));
    }
}
