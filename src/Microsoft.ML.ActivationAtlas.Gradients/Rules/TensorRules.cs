using Microsoft.ML.ActivationAtlas.Onnx.Protobuf;
using static Microsoft.ML.ActivationAtlas.Onnx.OnnxAttributes;

namespace Microsoft.ML.ActivationAtlas.Gradients.Rules;

/// <summary>
/// Ops that select or assemble parts of tensors: Concat, Split, Slice, Gather, Pad (constant mode).
/// Slice and Gather map gradients back through the flat index of each selected element, so dynamic
/// starts/ends/steps and negative indices behave exactly as in the forward op.
/// </summary>
internal static class TensorRules
{
    public static void Register(RuleTable table)
    {
        table.Add("Concat", ConcatVjp, ConcatJvp);
        table.Add("Split", SplitVjp, ShapeRules.SameOpOnFirstInput);
        table.Add("Slice", (ctx, n, dy) => IndexSelectVjp(ctx, n, dy), ShapeRules.SameOpOnFirstInput);
        table.Add("Gather", (ctx, n, dy) => IndexSelectVjp(ctx, n, dy), ShapeRules.SameOpOnFirstInput);
        table.Add("Pad", PadVjp, PadJvp);
    }

    private static string?[] ConcatVjp(RuleContext ctx, NodeProto n, string?[] dy)
    {
        var result = new string?[n.Input.Count];
        if (dy[0] is null)
            return result;
        var g = ctx.G;
        long axis = GetInt(n, "axis", 0);
        // Split sizes along the axis, read from the inputs' shapes when the graph runs.
        var sizes = n.Input.Select(x => g.Emit("Gather", [g.Shape(x), g.Int64s(axis)], Int("axis", 0))).ToArray();
        string split = g.Emit("Concat", sizes, Int("axis", 0));
        var parts = g.EmitMulti("Split", [dy[0]!, split], n.Input.Count, Int("axis", axis));
        for (int i = 0; i < n.Input.Count; i++)
            result[i] = ctx.IsActive(n.Input[i]) ? parts[i] : null;
        return result;
    }

    private static string?[] ConcatJvp(RuleContext ctx, NodeProto n, string?[] d)
    {
        if (d.All(t => t is null))
            return [null];
        var parts = n.Input.Select((x, i) => d[i] ?? ctx.G.ZerosLike(x)).ToArray();
        return [ctx.G.Emit("Concat", parts, CopyExcept(n).ToArray())];
    }

    private static string?[] SplitVjp(RuleContext ctx, NodeProto n, string?[] dy)
    {
        var result = new string?[n.Input.Count];
        if (dy.All(t => t is null) || !ctx.IsActive(n.Input[0]))
            return result;
        long axis = GetInt(n, "axis", 0);
        var parts = n.Output.Select((y, i) => dy[i] ?? ctx.G.ZerosLike(y)).ToArray();
        result[0] = ctx.G.Emit("Concat", parts, Int("axis", axis));
        return result;
    }

    /// <summary>
    /// Runs the forward op on the input's flat element indices, then adds the gradient at the selected indices
    /// (repeated indices accumulate).
    /// </summary>
    private static string?[] IndexSelectVjp(RuleContext ctx, NodeProto n, string?[] dy)
    {
        var result = new string?[n.Input.Count];
        if (dy[0] is null || !ctx.IsActive(n.Input[0]))
            return result;
        for (int i = 1; i < n.Input.Count; i++)
            if (ctx.IsActive(n.Input[i]))
                throw RuleContext.Unsupported(n, $"input {i} depends on the differentiation point.");
        var g = ctx.G;
        string x = n.Input[0];
        if (PutBackByPad(ctx, n, dy[0]!) is { } padded)
        {
            result[0] = padded;
            return result;
        }
        var inputs = n.Input.ToArray();
        inputs[0] = g.FlatIndexOf(x);
        string selected = g.Emit(n.OpType, inputs, CopyExcept(n).ToArray());
        result[0] = g.ScatterAdd(x, selected, dy[0]!);
        return result;
    }

    /// <summary>
    /// The gradient of a Slice with steps of 1, or of a Gather of one constant index: the output gradient put back where
    /// the forward took it from, with zeros around it, by one Pad (a single pass over the input's size, against zeros,
    /// flat indices and a scatter). A Slice's starts and axes may be computed when the graph runs (as in attention's
    /// query, key and value sliced from one projection); starts are clamped as Slice clamps them, and the padding after
    /// each axis is what the input has beyond the gradient. Null for other cases.
    /// </summary>
    private static string? PutBackByPad(RuleContext ctx, NodeProto n, string dy)
    {
        var g = ctx.G;
        string starts, axes;
        string grad = dy;
        if (n.OpType == "Gather")
        {
            if (g.ConstantValue(n.Input[1]) is not { } index || !IsInteger(index) || Onnx.OnnxTensors.ElementCount(index.Dims) != 1 || index.Dims.Count > 1)
                return null;
            long axis = GetInt(n, "axis", 0);
            starts = g.Int64s(Onnx.OnnxTensors.ToLongs(index));
            axes = g.Int64s(axis);
            if (index.Dims.Count == 0)
                grad = g.Unsqueeze(dy, [axis]); // the output's rank is the input's, so a negative axis means the same axis
        }
        else
        {
            if (RuleContext.Input(n, 4) is { } stepsName && (g.ConstantValue(stepsName) is not { } steps || !IsInteger(steps)
                || Onnx.OnnxTensors.ToLongs(steps).Any(v => v != 1)))
                return null;
            starts = g.ToInt64(n.Input[1]);
            axes = RuleContext.Input(n, 3) is { } axesName
                ? g.ToInt64(axesName)
                : g.Emit("Range", [g.Int64Scalar(0), g.Emit("Squeeze", [g.Emit("Shape", [starts]), g.Int64s(0)]), g.Int64Scalar(1)]);
        }
        string shape = g.Shape(n.Input[0]);
        string rank = g.Emit("Shape", [shape]);
        string dims = g.Emit("Gather", [shape, axes], Int("axis", 0));
        // begin = clamp(start + dim where the start is negative, 0, dim); negative axes count from the rank.
        string begin = g.Emit("Min", [g.Emit("Max", [g.Add(starts, g.Mul(NegativeAsOne(g, starts), dims)), g.Int64s(0)]), dims]);
        string after = g.Sub(g.Sub(dims, begin), g.Emit("Gather", [g.Shape(grad), axes], Int("axis", 0)));
        string normalizedAxes = g.Add(axes, g.Mul(NegativeAsOne(g, axes), rank));
        string zeros = g.Emit("ConstantOfShape", [g.Mul(rank, g.Int64s(2))], Tensor("value", Internal.GraphEmitter.Int64Value(0)));
        string pads = g.Emit("ScatterElements", [zeros, g.Emit("Concat", [normalizedAxes, g.Add(normalizedAxes, rank)], Int("axis", 0)),
            g.Emit("Concat", [begin, after], Int("axis", 0))], Int("axis", 0));
        return g.Emit("Pad", [grad, pads]);
    }

    private static bool IsInteger(TensorProto t)
        => t.DataType is (int)TensorProto.Types.DataType.Int64 or (int)TensorProto.Types.DataType.Int32;

    // 1 where the value is negative, else 0 (int64).
    private static string NegativeAsOne(Internal.GraphEmitter g, string x)
        => g.ToInt64(g.Emit("Less", [x, g.Int64s(0)]));

    private static (string Pads, string? Axes) PadsOf(RuleContext ctx, NodeProto n)
    {
        string mode = GetString(n, "mode", "constant");
        if (mode != "constant")
            throw RuleContext.Unsupported(n, $"mode '{mode}' is not supported (only constant).");
        string pads = RuleContext.Input(n, 1) ?? throw RuleContext.Unsupported(n, "the pads input is missing.");
        return (pads, RuleContext.Input(n, 3));
    }

    private static string?[] PadVjp(RuleContext ctx, NodeProto n, string?[] dy)
    {
        var result = new string?[n.Input.Count];
        if (dy[0] is null || !ctx.IsActive(n.Input[0]))
            return result;
        var (pads, axes) = PadsOf(ctx, n);
        var g = ctx.G;
        string x = n.Input[0];
        // pads = [begin_0..begin_k, end_0..end_k]; the input sits at [begin, begin + shape(x)) of the output.
        string count = g.Emit("Div", [g.Emit("Shape", [pads]), g.Int64s(2)]);
        string begin = g.Emit("Slice", [pads, g.Int64s(0), count, g.Int64s(0)]);
        string xShape = axes is null ? g.Shape(x) : g.Emit("Gather", [g.Shape(x), axes], Int("axis", 0));
        string end = g.Add(begin, xShape);
        string sliceAxes = axes ?? g.Emit("Range", [g.Int64Scalar(0), g.Emit("Size", [g.Shape(x)]), g.Int64Scalar(1)]);
        result[0] = g.Emit("Slice", [dy[0]!, begin, end, sliceAxes]);
        return result;
    }

    private static string?[] PadJvp(RuleContext ctx, NodeProto n, string?[] d)
    {
        if (d[0] is null)
            return [null];
        var (pads, axes) = PadsOf(ctx, n);
        var g = ctx.G;
        return [axes is null
            ? g.Emit("Pad", [d[0]!, pads], Onnx.OnnxAttributes.String("mode", "constant"))
            : g.Emit("Pad", [d[0]!, pads, "", axes], Onnx.OnnxAttributes.String("mode", "constant"))];
    }
}
