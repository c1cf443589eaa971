using Google.Protobuf;
using Microsoft.ML.ActivationAtlas.Gradients.Rules;
using Microsoft.ML.ActivationAtlas.Onnx;
using Microsoft.ML.ActivationAtlas.Onnx.Protobuf;
using static Microsoft.ML.ActivationAtlas.Onnx.OnnxAttributes;

namespace Microsoft.ML.ActivationAtlas.Gradients.Internal;

/// <summary>
/// Reference precision: computes a graph in float64 with float32 inputs and outputs. ONNX Runtime's CPU provider has
/// no float64 convolution, pooling or Erf, so before differentiation each Conv (any group) is rewritten as shifted
/// strided slices of the padded input and one MatMul (im2col), AveragePool as a sum of those slices and
/// GlobalAveragePool as ReduceMean. After differentiation Erf becomes a float64 series, every float constant
/// becomes float64 and the graph inputs/outputs are cast at the boundary.
/// </summary>
internal static class DoublePrecision
{
    private const int Float = (int)TensorProto.Types.DataType.Float;
    private const int Double = (int)TensorProto.Types.DataType.Double;

    /// <summary>Rewrites the ops without float64 kernels into ops that have them (same float32 results).</summary>
    public static void Prepare(ModelProto model, int opset)
    {
        var graph = model.Graph;
        var g = new GraphEmitter(graph, opset, "f64__"); // sees every name in use
        var nodes = graph.Node.ToList();
        graph.Node.Clear();
        foreach (var node in nodes)
        {
            if (node.OpType == "Conv")
                ConvAsMatMul(g, node);
            else if (node.OpType == "AveragePool")
                AveragePoolAsSlices(g, node);
            else if (node.OpType == "GlobalAveragePool")
                g.EmitNamed("ReduceMean", [node.Input[0]], node.Output[0], Ints("axes", [2, 3]), Int("keepdims", 1));
            else
                graph.Node.Add(node);
        }
    }

    /// <summary>
    /// The kh*kw shifted, strided views of a padded [N,C,H,W] tensor that a 2-D window visits, each [N,C,OH,OW]
    /// (im2col's columns before stacking).
    /// </summary>
    private static List<string> WindowSlices(GraphEmitter g, string padded, SpatialAttributes a)
    {
        long kh = a.Kernel[0], kw = a.Kernel[1];
        var slices = new List<string>();
        for (long i = 0; i < kh; i++)
            for (long j = 0; j < kw; j++)
            {
                long endY = -(kh - 1 - i) * a.Dilations[0], endX = -(kw - 1 - j) * a.Dilations[1];
                slices.Add(g.Emit("Slice", [padded, g.Int64s(i * a.Dilations[0], j * a.Dilations[1]),
                    g.Int64s(endY == 0 ? long.MaxValue : endY, endX == 0 ? long.MaxValue : endX), g.Int64s(2, 3), g.Int64s(a.Strides)]));
            }
        return slices;
    }

    private static string PadSpatial(GraphEmitter g, string x, long[] begin, long[] end, string? value = null)
        => begin.Concat(end).Any(p => p != 0)
            ? g.Emit("Pad", value is null ? [x, g.Int64s(0, 0, begin[0], begin[1], 0, 0, end[0], end[1])]
                : [x, g.Int64s(0, 0, begin[0], begin[1], 0, 0, end[0], end[1]), value])
            : x;

    /// <summary>
    /// Conv (any group) as im2col: the window slices stacked to [N, G, Cg*kh*kw, OH*OW] and multiplied by the
    /// weights viewed as [G, M/G, Cg*kh*kw].
    /// </summary>
    private static void ConvAsMatMul(GraphEmitter g, NodeProto node)
    {
        var weight = g.ConstantValue(node.Input[1])
            ?? throw RuleContext.Unsupported(node, "float64 evaluation needs constant convolution weights.");
        if (weight.Dims.Count != 4)
            throw RuleContext.Unsupported(node, "float64 evaluation supports 2-D convolutions only.");
        var a = SpatialAttributes.Read(node, weight.Dims.Skip(2).ToArray());
        long groups = GetInt(node, "group", 1);
        long m = weight.Dims[0], cg = weight.Dims[1], kh = a.Kernel[0], kw = a.Kernel[1];
        string padded = PadSpatial(g, node.Input[0], a.PadsBegin, a.PadsEnd);
        var columns = WindowSlices(g, padded, a).Select(slice => g.Unsqueeze(slice, [2])).ToList();
        string stacked = columns.Count == 1 ? columns[0] : g.Emit("Concat", columns, Int("axis", 2));
        string cols = g.Reshape(stacked, g.Int64s(0, groups, cg * kh * kw, -1));
        string w = g.Reshape(node.Input[1], g.Int64s(groups, m / groups, cg * kh * kw));
        string product = g.Emit("MatMul", [w, cols]);
        // [N, G, M/G, OH*OW] -> [N, M, OH, OW], with OH, OW from the stacked slices' shape.
        string spatial = g.Emit("Slice", [g.Shape(stacked), g.Int64s(3), g.Int64s(5), g.Int64s(0)]);
        string shape = g.Emit("Concat", [g.Int64s(0, m), spatial], Int("axis", 0));
        if (RuleContext.Input(node, 2) is { } bias)
        {
            string reshaped = g.Reshape(product, shape);
            g.EmitNamed("Add", [reshaped, g.Reshape(bias, g.Int64s(m, 1, 1))], node.Output[0]);
        }
        else
        {
            g.EmitNamed("Reshape", [product, shape], node.Output[0]);
        }
    }

    /// <summary>
    /// AveragePool (2-D, count_include_pad both ways, ceil_mode) as the sum of the window slices divided by the
    /// number of elements each window counts (the same sum over ones that are 1 on the input and, with
    /// count_include_pad, on the explicit padding; never on ceil_mode's extra row and column).
    /// </summary>
    private static void AveragePoolAsSlices(GraphEmitter g, NodeProto node)
    {
        var a = SpatialAttributes.Read(node, null);
        if (a.Rank != 2 || a.Dilations.Any(d => d != 1))
            throw RuleContext.Unsupported(node, "float64 evaluation supports undilated 2-D average pooling only.");
        long[] extra = a.CeilMode ? a.Strides.Select(s => s - 1).ToArray() : new long[2];
        long[] end = a.PadsEnd.Select((p, i) => p + extra[i]).ToArray();
        string x = node.Input[0];
        string sum = g.Sum(WindowSlices(g, PadSpatial(g, x, a.PadsBegin, end), a));
        string onesShape = g.Emit("Concat", [g.Int64s(1, 1), g.ShapeFrom(x, 2)], Int("axis", 0));
        string ones = g.Emit("ConstantOfShape", [onesShape], Tensor("value", GraphEmitter.FloatValue(1f)));
        string counted = GetInt(node, "count_include_pad", 0) != 0
            ? PadSpatial(g, PadSpatial(g, ones, a.PadsBegin, a.PadsEnd, g.One), new long[2], extra)
            : PadSpatial(g, ones, a.PadsBegin, end);
        string count = g.Sum(WindowSlices(g, counted, a));
        g.EmitNamed("Div", [sum, count], node.Output[0]);
    }

    /// <summary>
    /// Erf in float64 (ONNX Runtime's CPU Erf is float32 only): with c = clip(x, -6, 6) (beyond, erf is +-1 to
    /// float64 precision), erf(x) = 2/sqrt(pi) c exp(-c^2) sum_n 2^n c^(2n) / (2n+1)!!, whose terms are all positive
    /// (no cancellation); 100 terms in Horner form meet math's erf to 2e-15. The coefficients are float64 constants.
    /// Applied after differentiation, so the derivative rule's exact exp form is kept.
    /// </summary>
    private static void ErfAsSeries(GraphEmitter g, NodeProto node)
    {
        const int terms = 100;
        var coefficients = new double[terms + 1];
        coefficients[0] = 2.0 / Math.Sqrt(Math.PI);
        for (int n = 1; n <= terms; n++)
            coefficients[n] = coefficients[n - 1] * 2.0 / (2 * n + 1);
        string c = g.Emit("Clip", [node.Input[0], g.FloatScalar(-6f), g.FloatScalar(6f)]);
        string z = g.Mul(c, c);
        string p = DoubleScalar(g, coefficients[terms]);
        for (int n = terms - 1; n >= 0; n--)
            p = g.Add(g.Mul(p, z), DoubleScalar(g, coefficients[n]));
        g.EmitNamed("Mul", [g.Mul(c, g.Emit("Exp", [g.Neg(z)])), p], node.Output[0]);
    }

    private static string DoubleScalar(GraphEmitter g, double value)
    {
        var t = new TensorProto { Name = g.Fresh("f64_const"), DataType = Double };
        t.DoubleData.Add(value);
        g.Graph.Initializer.Add(t);
        return t.Name;
    }

    /// <summary>Makes the graph compute in float64 with float32 inputs and outputs.</summary>
    public static void Apply(ModelProto model)
    {
        var graph = model.Graph;
        if (graph.Node.Any(n => n.OpType is "Erf" or "AveragePool"))
        {
            var g = new GraphEmitter(graph, OpsetUpgrade.OpsetOf(model), "f64erf__"); // sees every name in use
            var nodes = graph.Node.ToList();
            graph.Node.Clear();
            foreach (var node in nodes)
                if (node.OpType == "Erf") ErfAsSeries(g, node);
                else if (node.OpType == "AveragePool") AveragePoolAsSlices(g, node); // tangents of relaxed max pools
                else graph.Node.Add(node);
        }
        foreach (var t in graph.Initializer)
            ToDouble(t);
        foreach (var node in graph.Node)
        {
            if (node.OpType is "Constant" or "ConstantOfShape")
                foreach (var attr in node.Attribute)
                    if (attr.T is { } t)
                        ToDouble(t);
            if (node.OpType == "Cast" && GetInt(node, "to", 0) == Float)
                Find(node, "to")!.I = Double;
        }

        var head = new List<NodeProto>();
        var rename = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var input in graph.Input.Where(i => i.Type?.TensorType?.ElemType == Float))
        {
            string wide = input.Name + "__f64";
            rename[input.Name] = wide;
            head.Add(Cast(input.Name, wide, Double));
        }
        var outputs = new HashSet<string>(graph.Output.Where(o => o.Type?.TensorType?.ElemType == Float).Select(o => o.Name), StringComparer.Ordinal);
        var tail = new List<NodeProto>();
        foreach (var node in graph.Node)
            for (int i = 0; i < node.Output.Count; i++)
                if (outputs.Contains(node.Output[i]))
                {
                    string wide = node.Output[i] + "__f64";
                    tail.Add(Cast(wide, node.Output[i], Float));
                    rename[node.Output[i]] = wide;
                    node.Output[i] = wide;
                }
        foreach (var node in graph.Node)
            for (int i = 0; i < node.Input.Count; i++)
                if (rename.TryGetValue(node.Input[i], out var wide))
                    node.Input[i] = wide;
        var all = head.Concat(graph.Node).Concat(tail).ToList();
        graph.Node.Clear();
        graph.Node.AddRange(all);
        graph.ValueInfo.Clear();
    }

    private static NodeProto Cast(string input, string output, int to)
    {
        var n = new NodeProto { OpType = "Cast", Name = output + "_cast" };
        n.Input.Add(input);
        n.Output.Add(output);
        n.Attribute.Add(Int("to", to));
        return n;
    }

    private static void ToDouble(TensorProto t)
    {
        if (t.DataType != Float)
            return;
        var values = OnnxTensors.ToFloats(t);
        var bytes = new byte[values.Length * sizeof(double)];
        for (int i = 0; i < values.Length; i++)
            BitConverter.TryWriteBytes(bytes.AsSpan(i * sizeof(double)), (double)values[i]);
        t.FloatData.Clear();
        t.RawData = ByteString.CopyFrom(bytes);
        t.DataType = Double;
    }
}
