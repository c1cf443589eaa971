using Microsoft.ML.ActivationAtlas.Onnx.Protobuf;
using static Microsoft.ML.ActivationAtlas.Onnx.OnnxAttributes;

namespace Microsoft.ML.ActivationAtlas.Gradients.Rules;

/// <summary>
/// Ops that only move elements: Reshape, Flatten, Squeeze, Unsqueeze, Expand, Transpose, and pass-through ops
/// (Identity, Dropout in inference, float-to-float Cast). Shapes computed in the graph are reused as they are.
/// </summary>
internal static class ShapeRules
{
    public static void Register(RuleTable table)
    {
        foreach (string op in new[] { "Reshape", "Flatten", "Squeeze", "Unsqueeze" })
            table.Add(op, ReshapeBack, SameOpOnFirstInput);
        table.Add("Expand", (ctx, n, dy) => dy[0] is null || !ctx.IsActive(n.Input[0]) ? new string?[2] : [ctx.ReduceToOperand(dy[0]!, n, n.Input[0]), null],
            SameOpOnFirstInput);
        table.Add("Transpose", TransposeVjp, SameOpOnFirstInput);
        table.Add("Identity", PassThrough, PassThrough);
        table.Add("Dropout", PassThrough, PassThrough);
        table.Add("Cast", CastRule, CastRule);
    }

    private static string?[] ReshapeBack(RuleContext ctx, NodeProto n, string?[] dy)
    {
        var result = new string?[n.Input.Count];
        if (dy[0] is not null && ctx.IsActive(n.Input[0]))
            result[0] = ctx.G.Reshape(dy[0]!, ctx.G.Shape(n.Input[0]));
        return result;
    }

    /// <summary>Applies the same (linear) op to the tangent, keeping the other inputs and the attributes.</summary>
    internal static string?[] SameOpOnFirstInput(RuleContext ctx, NodeProto n, string?[] d)
    {
        var result = new string?[n.Output.Count];
        if (d[0] is null)
            return result;
        for (int i = 1; i < d.Length; i++)
            if (d[i] is not null)
                throw RuleContext.Unsupported(n, $"input {i} depends on the differentiation point.");
        var inputs = n.Input.ToArray();
        inputs[0] = d[0]!;
        var outputs = ctx.G.EmitMulti(n.OpType, inputs, n.Output.Count, CopyExcept(n).ToArray());
        for (int i = 0; i < outputs.Length; i++)
            result[i] = n.Output[i].Length > 0 ? outputs[i] : null;
        return result;
    }

    private static string?[] TransposeVjp(RuleContext ctx, NodeProto n, string?[] dy)
    {
        if (dy[0] is null || !ctx.IsActive(n.Input[0]))
            return [null];
        long[]? perm = GetInts(n, "perm");
        if (perm is null)
            return [ctx.G.Emit("Transpose", [dy[0]!])]; // reversing the axes is its own inverse
        var inverse = new long[perm.Length];
        for (int i = 0; i < perm.Length; i++)
            inverse[perm[i]] = i;
        return [ctx.G.Emit("Transpose", [dy[0]!], Ints("perm", inverse))];
    }

    private static string?[] PassThrough(RuleContext ctx, NodeProto n, string?[] d)
    {
        var result = new string?[Math.Max(n.Input.Count, n.Output.Count)];
        if (d[0] is not null && ctx.IsActive(n.Input[0]))
            result[0] = d[0];
        return result;
    }

    private static string?[] CastRule(RuleContext ctx, NodeProto n, string?[] d)
    {
        long to = GetInt(n, "to", 0);
        if (to is not ((long)TensorProto.Types.DataType.Float or (long)TensorProto.Types.DataType.Double or (long)TensorProto.Types.DataType.Float16))
            return [null];
        return PassThrough(ctx, n, d);
    }
}
