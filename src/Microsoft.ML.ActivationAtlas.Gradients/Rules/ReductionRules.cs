using Microsoft.ML.ActivationAtlas.Onnx.Protobuf;
using static Microsoft.ML.ActivationAtlas.Onnx.OnnxAttributes;

namespace Microsoft.ML.ActivationAtlas.Gradients.Rules;

/// <summary>
/// ReduceSum, ReduceMean, ReduceMax, ReduceMin, ReduceSumSquare, ReduceL1 and ReduceL2 (axes as attribute or input,
/// keepdims both ways, reduce-all). ReduceMax/ReduceMin share the gradient equally among tied extremes.
/// </summary>
internal static class ReductionRules
{
    public static void Register(RuleTable table)
    {
        table.Add("ReduceSum", (ctx, n, dy) => Vjp(ctx, n, dy, mean: false), SameOp);
        table.Add("ReduceMean", (ctx, n, dy) => Vjp(ctx, n, dy, mean: true), SameOp);
        AddWeighted(table, "ReduceSumSquare", (ctx, n) => ctx.G.Mul(n.Input[0], ctx.G.FloatScalar(2f)));
        AddWeighted(table, "ReduceL1", (ctx, n) => ctx.G.Emit("Sign", [n.Input[0]]));
        AddWeighted(table, "ReduceL2", (ctx, n) => ctx.G.Div(n.Input[0], Unreduce(ctx, n, n.Output[0])));
        AddWeighted(table, "ReduceMax", Extreme);
        AddWeighted(table, "ReduceMin", Extreme);
    }

    private static string?[] Vjp(RuleContext ctx, NodeProto n, string?[] dy, bool mean)
    {
        var result = new string?[n.Input.Count];
        if (dy[0] is null || !ctx.IsActive(n.Input[0]))
            return result;
        var g = ctx.G;
        string expanded = Unreduce(ctx, n, dy[0]!);
        if (mean)
            expanded = g.Div(expanded, g.Div(g.SizeAsFloat(n.Input[0]), g.SizeAsFloat(n.Output[0])));
        result[0] = expanded;
        return result;
    }

    /// <summary>A tensor shaped like the reduction's output, broadcast back to the input's shape.</summary>
    private static string Unreduce(RuleContext ctx, NodeProto n, string reduced)
    {
        var g = ctx.G;
        bool keepDims = GetInt(n, "keepdims", 1) != 0;
        string? axes = Axes(ctx, n);
        // Put the reduced axes back (as ones) so the tensor broadcasts over them. Negative axes count from the
        // input's rank, which is also the rank after unsqueezing.
        if (!keepDims && axes is not null)
            reduced = g.Emit("Unsqueeze", [reduced, axes]);
        return g.Expand(reduced, g.Shape(n.Input[0]));
    }

    /// <summary>The reduced axes as a 1-D int64 tensor (input or attribute), or null for all axes.</summary>
    private static string? Axes(RuleContext ctx, NodeProto n)
        => RuleContext.Input(n, 1) ?? (GetInts(n, "axes") is { } a ? ctx.G.Int64s(a) : null);

    /// <summary>ReduceSum with the node's axes and keepdims.</summary>
    private static string SumLike(RuleContext ctx, NodeProto n, string x)
    {
        string? axes = Axes(ctx, n);
        var keep = Int("keepdims", GetInt(n, "keepdims", 1));
        return axes is null ? ctx.G.Emit("ReduceSum", [x], keep) : ctx.G.Emit("ReduceSum", [x, axes], keep);
    }

    /// <summary>
    /// Registers a reduction whose derivative is a per-element weight w (shaped like the input):
    /// dx = w * unreduce(dy), dy = ReduceSum(w * dx).
    /// </summary>
    private static void AddWeighted(RuleTable table, string op, Func<RuleContext, NodeProto, string> weight)
    {
        table.Add(op, (ctx, n, dy) =>
        {
            var result = new string?[n.Input.Count];
            if (dy[0] is not null && ctx.IsActive(n.Input[0]))
                result[0] = ctx.G.Mul(weight(ctx, n), Unreduce(ctx, n, dy[0]!));
            return result;
        }, (ctx, n, d) => [d[0] is null ? null : SumLike(ctx, n, ctx.G.Mul(weight(ctx, n), d[0]!))]);
    }

    /// <summary>1/count at the elements equal to the extreme of their reduction group, 0 elsewhere.</summary>
    private static string Extreme(RuleContext ctx, NodeProto n)
    {
        var g = ctx.G;
        string hit = g.ToFloat(g.Emit("Equal", [n.Input[0], Unreduce(ctx, n, n.Output[0])]));
        string count = g.Emit("ReduceSum", Axes(ctx, n) is { } axes ? [hit, axes] : [hit], Int("keepdims", 1));
        return g.Div(hit, count);
    }

    private static string?[] SameOp(RuleContext ctx, NodeProto n, string?[] d)
    {
        if (d[0] is null)
            return [null];
        var inputs = n.Input.ToArray();
        inputs[0] = d[0]!;
        return [ctx.G.Emit(n.OpType, inputs, CopyExcept(n).ToArray())];
    }
}
