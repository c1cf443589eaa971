using Microsoft.ML.ActivationAtlas.Gradients.Rules;
using Microsoft.ML.ActivationAtlas.Onnx.Protobuf;
using static Microsoft.ML.ActivationAtlas.Onnx.OnnxAttributes;

namespace Microsoft.ML.ActivationAtlas.Gradients.Internal;

/// <summary>
/// The shapes of the forward graph's tensors that follow from its input shapes before it runs: each dimension a number,
/// a named symbol (the input's <c>dim_param</c>, such as a dynamic batch) or unknown. Covers the operators of
/// convolutional networks (element-wise and broadcasting ops, Conv, the pools, Concat); any other operator's outputs
/// are unknown. The rules use it to leave out work that only runtime shapes would otherwise decide: the broadcast
/// reduction of an operand that was not broadcast, and the crop after a transposed convolution.
/// </summary>
internal sealed class StaticShapes
{
    private static readonly HashSet<string> SameAsFirstInput = new(StringComparer.Ordinal)
    {
        "Relu", "LeakyRelu", "PRelu", "Elu", "Selu", "Sigmoid", "HardSigmoid", "HardSwish", "Tanh", "Softplus", "Softsign",
        "Clip", "Neg", "Abs", "Exp", "Log", "Sqrt", "Reciprocal", "Erf", "Gelu", "Identity", "Dropout", "Cast", "Floor",
        "Ceil", "Round", "Sign", "Not", "BatchNormalization", "InstanceNormalization", "LayerNormalization", "LRN",
        "Softmax", "LogSoftmax",
    };

    private static readonly HashSet<string> Broadcasting = new(StringComparer.Ordinal)
    {
        "Add", "Sub", "Mul", "Div", "Pow", "Max", "Min", "Sum", "Mean", "Where", "Equal", "Greater", "Less",
        "GreaterOrEqual", "LessOrEqual", "And", "Or",
    };

    private readonly Dictionary<string, Dim[]> _shapes = new(StringComparer.Ordinal);

    /// <summary>One dimension: a number (<see cref="Value"/> at least 0), a symbol, or unknown (neither).</summary>
    public readonly record struct Dim(long Value, string? Symbol)
    {
        public static readonly Dim Unknown = new(-1, null);
        public bool IsKnown => Symbol is null && Value >= 0;

        /// <summary>True when both are the same number or the same symbol; unknown equals nothing.</summary>
        public bool Matches(Dim other) => IsKnown ? other.IsKnown && Value == other.Value : Symbol is not null && Symbol == other.Symbol;
    }

    private StaticShapes() { }

    /// <summary>Propagates the graph inputs' and constants' shapes through the nodes, in graph order.</summary>
    public static StaticShapes Infer(GraphProto graph, GraphEmitter g)
    {
        var s = new StaticShapes();
        foreach (var input in graph.Input)
            if (input.Type?.TensorType?.Shape is { } shape)
                s._shapes[input.Name] = shape.Dim.Select(d =>
                    d.ValueCase == TensorShapeProto.Types.Dimension.ValueOneofCase.DimValue ? new Dim(d.DimValue, null)
                    : d.ValueCase == TensorShapeProto.Types.Dimension.ValueOneofCase.DimParam && d.DimParam.Length > 0 ? new Dim(-1, d.DimParam)
                    : Dim.Unknown).ToArray();
        foreach (var t in graph.Initializer)
            s._shapes[t.Name] = t.Dims.Select(d => new Dim(d, null)).ToArray();
        foreach (var node in graph.Node)
        {
            if (!GraphAnalysis.IsDefaultDomain(node) || node.Output.Count == 0)
                continue;
            if (node.OpType == "Constant" && g.ConstantValue(node.Output[0]) is { } c)
            {
                s._shapes[node.Output[0]] = c.Dims.Select(d => new Dim(d, null)).ToArray();
                continue;
            }
            if (s.Output(node, g) is { } shape)
            {
                s._shapes[node.Output[0]] = shape;
                if (node.OpType == "MaxPool" && node.Output.Count > 1 && node.Output[1].Length > 0)
                    s._shapes[node.Output[1]] = shape;
            }
        }
        return s;
    }

    /// <summary>The tensor's shape where its rank is known (dimensions may still be unknown), else null.</summary>
    public Dim[]? Of(string tensor) => _shapes.TryGetValue(tensor, out var d) ? d : null;

    /// <summary>True when both shapes are known to be equal, dimension by dimension.</summary>
    public bool Same(string a, string b)
        => Of(a) is { } x && Of(b) is { } y && x.Length == y.Length && x.Zip(y).All(p => p.First.Matches(p.Second));

    /// <summary>The known sizes of the spatial axes (2 and on) of an N x C x ... tensor, or null.</summary>
    public long[]? Spatial(string tensor)
        => Of(tensor) is { Length: > 2 } d && d.Skip(2).All(v => v.IsKnown) ? d.Skip(2).Select(v => v.Value).ToArray() : null;

    private Dim[]? Output(NodeProto node, GraphEmitter g)
    {
        string op = node.OpType;
        if (SameAsFirstInput.Contains(op))
            return Of(node.Input[0]);
        if (Broadcasting.Contains(op))
            return Broadcast(node.Input.Where(i => i.Length > 0).Select(Of).ToList());
        return op switch
        {
            "Conv" => Windowed(node, g.ConstantValue(node.Input[1]) is { } w ? w.Dims.ToArray() : null),
            "MaxPool" or "AveragePool" => Windowed(node, null),
            "GlobalAveragePool" or "GlobalMaxPool" => Of(node.Input[0]) is { Length: > 2 } x
                ? [x[0], x[1], .. Enumerable.Repeat(new Dim(1, null), x.Length - 2)] : null,
            "Concat" => Concatenated(node),
            _ => null,
        };
    }

    // Numpy broadcasting of the inputs' shapes; null where a pair of dimensions cannot be decided.
    private static Dim[]? Broadcast(List<Dim[]?> inputs)
    {
        if (inputs.Count == 0 || inputs.Any(i => i is null))
            return null;
        int rank = inputs.Max(i => i!.Length);
        var result = new Dim[rank];
        for (int k = 0; k < rank; k++)
        {
            Dim? merged = null;
            foreach (var shape in inputs)
            {
                int j = k - (rank - shape!.Length);
                if (j < 0)
                    continue;
                var d = shape[j];
                if (merged is not { } m || (m.IsKnown && m.Value == 1))
                    merged = d;
                else if (!(d.IsKnown && d.Value == 1) && !d.Matches(m))
                    return null;
            }
            result[k] = merged ?? new Dim(1, null);
        }
        return result;
    }

    // Conv and the pools: batch, channels (the weights' first dimension for Conv) and the windowed spatial sizes.
    private Dim[]? Windowed(NodeProto node, long[]? weights)
    {
        if (Of(node.Input[0]) is not { Length: > 2 } x || (node.OpType == "Conv" && weights is null)
            || GetString(node, "auto_pad", "NOTSET") is not ("NOTSET" or "VALID") || GetInt(node, "ceil_mode", 0) != 0)
            return null;
        var a = SpatialAttributes.Read(node, weights?[2..]);
        if (a.Rank != x.Length - 2)
            return null;
        var result = new Dim[x.Length];
        result[0] = x[0];
        result[1] = weights is null ? x[1] : new Dim(weights[0], null);
        for (int i = 0; i < a.Rank; i++)
        {
            var d = x[2 + i];
            long reach = a.Dilations[i] * (a.Kernel[i] - 1) + 1;
            result[2 + i] = d.IsKnown ? new Dim((d.Value + a.PadsBegin[i] + a.PadsEnd[i] - reach) / a.Strides[i] + 1, null) : Dim.Unknown;
        }
        return result;
    }

    private Dim[]? Concatenated(NodeProto node)
    {
        var inputs = node.Input.Where(i => i.Length > 0).Select(Of).ToList();
        if (inputs.Count == 0 || inputs.Any(i => i is null) || inputs.Select(i => i!.Length).Distinct().Count() != 1)
            return null;
        int rank = inputs[0]!.Length;
        long axis = GetInt(node, "axis", 0);
        if (axis < 0)
            axis += rank;
        if (axis < 0 || axis >= rank)
            return null;
        var result = (Dim[])inputs[0]!.Clone();
        long total = 0;
        foreach (var shape in inputs)
        {
            var d = shape![axis];
            total = d.IsKnown && total >= 0 ? total + d.Value : -1;
            for (int k = 0; k < rank; k++)
                if (k != axis && !shape[k].Matches(result[k]))
                    result[k] = Dim.Unknown;
        }
        result[axis] = total >= 0 ? new Dim(total, null) : Dim.Unknown;
        return result;
    }
}
