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
        var inputs = n.Input.ToArray();
        inputs[0] = g.FlatIndexOf(x);
        string selected = g.Emit(n.OpType, inputs, CopyExcept(n).ToArray());
        result[0] = g.ScatterAdd(x, selected, dy[0]!);
        return result;
    }

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
