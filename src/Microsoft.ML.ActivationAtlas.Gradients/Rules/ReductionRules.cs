using Microsoft.ML.ActivationAtlas.Onnx.Protobuf;
using static Microsoft.ML.ActivationAtlas.Onnx.OnnxAttributes;

namespace Microsoft.ML.ActivationAtlas.Gradients.Rules;

/// <summary>ReduceSum and ReduceMean (axes as attribute or input, keepdims both ways, reduce-all).</summary>
internal static class ReductionRules
{
    public static void Register(RuleTable table)
    {
        table.Add("ReduceSum", (ctx, n, dy) => Vjp(ctx, n, dy, mean: false), SameOp);
        table.Add("ReduceMean", (ctx, n, dy) => Vjp(ctx, n, dy, mean: true), SameOp);
    }

    private static string?[] Vjp(RuleContext ctx, NodeProto n, string?[] dy, bool mean)
    {
        var result = new string?[n.Input.Count];
        if (dy[0] is null || !ctx.IsActive(n.Input[0]))
            return result;
        var g = ctx.G;
        string x = n.Input[0];
        string d = dy[0]!;
        bool keepDims = GetInt(n, "keepdims", 1) != 0;
        string? axesInput = RuleContext.Input(n, 1);
        long[]? axesAttribute = GetInts(n, "axes");
        if (!keepDims && (axesInput is not null || axesAttribute is not null))
        {
            // Put the reduced axes back (as ones) so the gradient broadcasts over them. Negative axes count from
            // the input's rank, which is also the rank after unsqueezing.
            d = g.Emit("Unsqueeze", [d, axesInput ?? g.Int64s(axesAttribute!)]);
        }
        string expanded = g.Expand(d, g.Shape(x));
        if (mean)
            expanded = g.Div(expanded, g.Div(g.SizeAsFloat(x), g.SizeAsFloat(n.Output[0])));
        result[0] = expanded;
        return result;
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
