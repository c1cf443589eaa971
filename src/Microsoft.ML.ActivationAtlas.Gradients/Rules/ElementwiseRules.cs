using Microsoft.ML.ActivationAtlas.Onnx.Protobuf;

namespace Microsoft.ML.ActivationAtlas.Gradients.Rules;

/// <summary>
/// Broadcasting binary arithmetic (Add, Sub, Mul, Div, Max, Min, Pow with a constant exponent), Where (the
/// condition is not differentiated) and variadic Sum.
/// Reverse mode sums each operand's gradient over the axes it was broadcast along.
/// </summary>
internal static class ElementwiseRules
{
    public static void Register(RuleTable table)
    {
        table.Add("Add", (ctx, n, dy) => Binary(ctx, n, dy[0], d => d, d => d), AddJvp);
        table.Add("Sub", (ctx, n, dy) => Binary(ctx, n, dy[0], d => d, d => ctx.G.Neg(d)), SubJvp);
        table.Add("Mul", (ctx, n, dy) => Binary(ctx, n, dy[0], d => ctx.G.Mul(d, n.Input[1]), d => ctx.G.Mul(d, n.Input[0])), MulJvp);
        table.Add("Div", (ctx, n, dy) => Binary(ctx, n, dy[0],
            d => ctx.G.Div(d, n.Input[1]),
            d => ctx.G.Neg(ctx.G.Div(ctx.G.Mul(d, n.Output[0]), n.Input[1]))), DivJvp);
        table.Add("Max", (ctx, n, dy) => Select(ctx, n, dy[0], "GreaterOrEqual"), (ctx, n, dx) => SelectJvp(ctx, n, dx, "GreaterOrEqual"));
        table.Add("Min", (ctx, n, dy) => Select(ctx, n, dy[0], "LessOrEqual"), (ctx, n, dx) => SelectJvp(ctx, n, dx, "LessOrEqual"));
        table.Add("Where", WhereVjp, WhereJvp);
        table.Add("Pow", PowVjp, PowJvp);
        table.Add("Sum", SumVjp, SumJvp);
    }

    private static string?[] Binary(RuleContext ctx, NodeProto n, string? dy, Func<string, string> left, Func<string, string> right)
    {
        var result = new string?[2];
        if (dy is null)
            return result;
        if (ctx.IsActive(n.Input[0]))
            result[0] = ctx.ReduceToOperand(left(dy), n, n.Input[0]);
        if (ctx.IsActive(n.Input[1]))
            result[1] = ctx.ReduceToOperand(right(dy), n, n.Input[1]);
        return result;
    }

    private static string?[] AddJvp(RuleContext ctx, NodeProto n, string?[] d)
        => [(d[0], d[1]) switch
        {
            (null, null) => null,
            (null, _) => d[1],
            (_, null) => d[0],
            _ => ctx.G.Add(d[0]!, d[1]!),
        }];

    private static string?[] SubJvp(RuleContext ctx, NodeProto n, string?[] d)
        => [(d[0], d[1]) switch
        {
            (null, null) => null,
            (null, _) => ctx.G.Neg(d[1]!),
            (_, null) => d[0],
            _ => ctx.G.Sub(d[0]!, d[1]!),
        }];

    private static string?[] MulJvp(RuleContext ctx, NodeProto n, string?[] d)
    {
        var g = ctx.G;
        string? a = d[0] is null ? null : g.Mul(d[0]!, n.Input[1]);
        string? b = d[1] is null ? null : g.Mul(n.Input[0], d[1]!);
        return [a is null ? b : b is null ? a : g.Add(a, b)];
    }

    private static string?[] DivJvp(RuleContext ctx, NodeProto n, string?[] d)
    {
        // d(a/b) = (da - y db) / b
        var g = ctx.G;
        if (d[0] is null && d[1] is null)
            return [null];
        string numerator = d[1] is null ? d[0]! : d[0] is null ? g.Neg(g.Mul(n.Output[0], d[1]!)) : g.Sub(d[0]!, g.Mul(n.Output[0], d[1]!));
        return [g.Div(numerator, n.Input[1])];
    }

    /// <summary>Max/Min: the gradient goes to the operand that was selected (the first one on ties).</summary>
    private static string?[] Select(RuleContext ctx, NodeProto n, string? dy, string comparison)
    {
        if (n.Input.Count != 2)
            throw RuleContext.Unsupported(n, "only two operands are supported.");
        if (dy is null)
            return new string?[2];
        return Route(ctx, n, dy, ctx.G.Emit(comparison, [n.Input[0], n.Input[1]]), 0, 1);
    }

    private static string?[] SelectJvp(RuleContext ctx, NodeProto n, string?[] d, string comparison)
    {
        if (n.Input.Count != 2)
            throw RuleContext.Unsupported(n, "only two operands are supported.");
        var g = ctx.G;
        string firstWins = g.Emit(comparison, [n.Input[0], n.Input[1]]);
        return [g.Where(firstWins, d[0] ?? g.Zero, d[1] ?? g.Zero)];
    }

    /// <summary>Where(condition, a, b): the gradient goes to the operand each element was taken from.</summary>
    private static string?[] WhereVjp(RuleContext ctx, NodeProto n, string?[] dy)
        => dy[0] is null ? new string?[3] : Route(ctx, n, dy[0]!, n.Input[0], 1, 2);

    private static string?[] WhereJvp(RuleContext ctx, NodeProto n, string?[] d)
    {
        var g = ctx.G;
        if (d[1] is null && d[2] is null)
            return [null];
        // The output is broadcast over all three inputs; a Where of the tangents keeps that shape.
        string a = d[1] ?? g.ZerosLike(n.Output[0]), b = d[2] ?? g.ZerosLike(n.Output[0]);
        return [g.Where(n.Input[0], a, b)];
    }

    /// <summary>
    /// Sends <paramref name="dy"/> to input <paramref name="whenTrue"/> where the condition holds and to
    /// <paramref name="whenFalse"/> elsewhere, each summed back to its operand's shape.
    /// </summary>
    private static string?[] Route(RuleContext ctx, NodeProto n, string dy, string condition, int whenTrue, int whenFalse)
    {
        var result = new string?[n.Input.Count];
        var g = ctx.G;
        if (ctx.IsActive(n.Input[whenTrue]))
            result[whenTrue] = ctx.ReduceToOperand(g.Where(condition, dy, g.Zero), n, n.Input[whenTrue]);
        if (ctx.IsActive(n.Input[whenFalse]))
            result[whenFalse] = ctx.ReduceToOperand(g.Where(condition, g.Zero, dy), n, n.Input[whenFalse]);
        return result;
    }

    private static string PowFactor(RuleContext ctx, NodeProto n)
    {
        if (ctx.IsActive(n.Input[1]))
            throw RuleContext.Unsupported(n, "an exponent that depends on the differentiation point is not supported.");
        var g = ctx.G;
        // A constant exponent e: e x^(e-1) with e - 1 worked out here, and 2x for a square (LayerNormalization's variance
        // written out), which spares a Pow pass over the whole tensor.
        if (g.ConstantValue(n.Input[1]) is { } c && Onnx.OnnxTensors.ElementCount(c.Dims) == 1
            && c.DataType is (int)TensorProto.Types.DataType.Float or (int)TensorProto.Types.DataType.Double
                or (int)TensorProto.Types.DataType.Int64 or (int)TensorProto.Types.DataType.Int32)
        {
            float e = Onnx.OnnxTensors.ToFloats(c)[0];
            return e switch
            {
                1f => g.One,
                2f => g.Mul(n.Input[0], g.FloatScalar(2f)),
                _ => g.Mul(g.Emit("Pow", [n.Input[0], g.FloatScalar(e - 1f)]), g.FloatScalar(e)),
            };
        }
        string exponent = g.ToFloat(n.Input[1]);
        return g.Mul(exponent, g.Emit("Pow", [n.Input[0], g.Sub(exponent, g.One)]));
    }

    private static string?[] PowVjp(RuleContext ctx, NodeProto n, string?[] dy)
    {
        var result = new string?[2];
        if (dy[0] is not null && ctx.IsActive(n.Input[0]))
            result[0] = ctx.ReduceToOperand(ctx.G.Mul(dy[0]!, PowFactor(ctx, n)), n, n.Input[0]);
        return result;
    }

    private static string?[] PowJvp(RuleContext ctx, NodeProto n, string?[] d)
        => [d[0] is null ? null : ctx.G.Mul(d[0]!, PowFactor(ctx, n))];

    private static string?[] SumVjp(RuleContext ctx, NodeProto n, string?[] dy)
    {
        var result = new string?[n.Input.Count];
        if (dy[0] is null)
            return result;
        for (int i = 0; i < n.Input.Count; i++)
            if (ctx.IsActive(n.Input[i]))
                result[i] = ctx.ReduceToOperand(dy[0]!, n, n.Input[i]);
        return result;
    }

    private static string?[] SumJvp(RuleContext ctx, NodeProto n, string?[] d)
    {
        var terms = d.Where(t => t is not null).Select(t => t!).ToList();
        return [terms.Count == 0 ? null : ctx.G.Sum(terms)];
    }
}
