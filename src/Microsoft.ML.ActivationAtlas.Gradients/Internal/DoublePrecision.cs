using Google.Protobuf;
using Microsoft.ML.ActivationAtlas.Gradients.Rules;
using Microsoft.ML.ActivationAtlas.Onnx;
using Microsoft.ML.ActivationAtlas.Onnx.Protobuf;
using static Microsoft.ML.ActivationAtlas.Onnx.OnnxAttributes;

namespace Microsoft.ML.ActivationAtlas.Gradients.Internal;

/// <summary>
/// Reference precision: computes a graph in float64 with float32 inputs and outputs. ONNX Runtime's CPU provider has
/// no float64 convolution, so before differentiation each Conv (group 1) is rewritten as shifted strided slices of
/// the padded input and one MatMul (im2col), and GlobalAveragePool as ReduceMean; after differentiation every float
/// constant becomes float64 and the graph inputs/outputs are cast at the boundary.
/// </summary>
internal static class DoublePrecision
{
    private const int Float = (int)TensorProto.Types.DataType.Float;
    private const int Double = (int)TensorProto.Types.DataType.Double;

    /// <summary>Rewrites the ops without float64 kernels into ops that have them (same float32 results).</summary>
    public static void Prepare(ModelProto model, int opset)
    {
        var graph = model.Graph;
        var nodes = graph.Node.ToList();
        graph.Node.Clear();
        var g = new GraphEmitter(graph, opset, "f64__");
        foreach (var node in nodes)
        {
            if (node.OpType == "Conv")
                ConvAsMatMul(g, node);
            else if (node.OpType == "GlobalAveragePool")
                g.EmitNamed("ReduceMean", [node.Input[0]], node.Output[0], Ints("axes", [2, 3]), Int("keepdims", 1));
            else
                graph.Node.Add(node);
        }
    }

    private static void ConvAsMatMul(GraphEmitter g, NodeProto node)
    {
        var weight = g.ConstantValue(node.Input[1])
            ?? throw RuleContext.Unsupported(node, "float64 evaluation needs constant convolution weights.");
        if (GetInt(node, "group", 1) != 1 || weight.Dims.Count != 4)
            throw RuleContext.Unsupported(node, "float64 evaluation supports 2-D convolutions with group 1 only.");
        var a = SpatialAttributes.Read(node, weight.Dims.Skip(2).ToArray());
        long m = weight.Dims[0], c = weight.Dims[1], kh = a.Kernel[0], kw = a.Kernel[1];
        string x = node.Input[0];
        string padded = a.PadsBegin.Concat(a.PadsEnd).Any(p => p != 0)
            ? g.Emit("Pad", [x, g.Int64s(0, 0, a.PadsBegin[0], a.PadsBegin[1], 0, 0, a.PadsEnd[0], a.PadsEnd[1])])
            : x;
        var columns = new List<string>();
        for (long i = 0; i < kh; i++)
            for (long j = 0; j < kw; j++)
            {
                long endY = -(kh - 1 - i) * a.Dilations[0], endX = -(kw - 1 - j) * a.Dilations[1];
                string slice = g.Emit("Slice", [padded, g.Int64s(i * a.Dilations[0], j * a.Dilations[1]),
                    g.Int64s(endY == 0 ? long.MaxValue : endY, endX == 0 ? long.MaxValue : endX), g.Int64s(2, 3), g.Int64s(a.Strides)]);
                columns.Add(g.Unsqueeze(slice, [2]));
            }
        string first = columns[0];
        string stacked = columns.Count == 1 ? first : g.Emit("Concat", columns, Int("axis", 2));
        string cols = g.Reshape(stacked, g.Int64s(0, c * kh * kw, -1));
        string w = g.Reshape(node.Input[1], g.Int64s(m, c * kh * kw));
        string product = g.Emit("MatMul", [w, cols]);
        // [N, M, OH*OW] -> [N, M, OH, OW], with OH, OW from the stacked slices' shape.
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

    /// <summary>Makes the graph compute in float64 with float32 inputs and outputs.</summary>
    public static void Apply(ModelProto model)
    {
        var graph = model.Graph;
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
