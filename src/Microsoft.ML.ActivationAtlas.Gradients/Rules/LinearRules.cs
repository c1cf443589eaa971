using Microsoft.ML.ActivationAtlas.Onnx.Protobuf;
using static Microsoft.ML.ActivationAtlas.Onnx.OnnxAttributes;

namespace Microsoft.ML.ActivationAtlas.Gradients.Rules;

/// <summary>Gemm (any transA/transB, alpha, beta) and MatMul (batched, broadcasting).</summary>
internal static class LinearRules
{
    public static void Register(RuleTable table)
    {
        table.Add("Gemm", GemmVjp, GemmJvp);
        table.Add("MatMul", MatMulVjp, MatMulJvp);
    }

    private static string?[] GemmVjp(RuleContext ctx, NodeProto n, string?[] dy)
    {
        var result = new string?[n.Input.Count];
        if (dy[0] is null)
            return result;
        var g = ctx.G;
        float alpha = GetFloat(n, "alpha", 1f), beta = GetFloat(n, "beta", 1f);
        long ta = GetInt(n, "transA", 0), tb = GetInt(n, "transB", 0);
        string a = n.Input[0], b = n.Input[1], d = dy[0]!;
        if (ctx.IsActive(a))
        {
            // Y = alpha op(A) op(B): dA = alpha dY op(B)^T, or its transpose when transA.
            result[0] = ta == 0
                ? g.Emit("Gemm", [d, b], Float("alpha", alpha), Int("transA", 0), Int("transB", 1 - tb))
                : g.Emit("Gemm", [b, d], Float("alpha", alpha), Int("transA", tb), Int("transB", 1));
        }
        if (ctx.IsActive(b))
        {
            result[1] = tb == 0
                ? g.Emit("Gemm", [a, d], Float("alpha", alpha), Int("transA", 1 - ta), Int("transB", 0))
                : g.Emit("Gemm", [d, a], Float("alpha", alpha), Int("transA", 1), Int("transB", ta));
        }
        if (RuleContext.Input(n, 2) is { } c && ctx.IsActive(c))
            result[2] = g.ReduceToShapeOf(beta == 1f ? d : g.Mul(d, g.FloatScalar(beta)), c);
        return result;
    }

    private static string?[] GemmJvp(RuleContext ctx, NodeProto n, string?[] d)
    {
        var g = ctx.G;
        float alpha = GetFloat(n, "alpha", 1f), beta = GetFloat(n, "beta", 1f);
        long ta = GetInt(n, "transA", 0), tb = GetInt(n, "transB", 0);
        var terms = new List<string>();
        if (d[0] is not null)
            terms.Add(g.Emit("Gemm", [d[0]!, n.Input[1]], Float("alpha", alpha), Int("transA", ta), Int("transB", tb)));
        if (d[1] is not null)
            terms.Add(g.Emit("Gemm", [n.Input[0], d[1]!], Float("alpha", alpha), Int("transA", ta), Int("transB", tb)));
        if (d.Length > 2 && d[2] is not null)
            terms.Add(beta == 1f ? d[2]! : g.Mul(d[2]!, g.FloatScalar(beta)));
        return [terms.Count == 0 ? null : g.Sum(terms)];
    }

    /// <summary>
    /// dA = dY B^T and dB = A^T dY for batched, broadcasting MatMul of any rank of at least 2; broadcast batch axes
    /// are then summed back to each operand's shape.
    /// </summary>
    private static string?[] MatMulVjp(RuleContext ctx, NodeProto n, string?[] dy)
    {
        var result = new string?[2];
        if (dy[0] is null)
            return result;
        var g = ctx.G;
        if (ctx.IsActive(n.Input[0]))
            result[0] = g.ReduceToShapeOf(g.Emit("MatMul", [dy[0]!, SwapLastTwo(ctx, n, n.Input[1])]), n.Input[0]);
        if (ctx.IsActive(n.Input[1]))
            result[1] = g.ReduceToShapeOf(g.Emit("MatMul", [SwapLastTwo(ctx, n, n.Input[0]), dy[0]!]), n.Input[1]);
        return result;
    }

    /// <summary>
    /// Swaps the last two axes. A constant (a weight) has a known rank and is transposed directly; a tensor computed
    /// in the graph (attention's Q and K, rank known only when the graph runs) is viewed as [batch, J, K],
    /// transposed, and given back its batch axes.
    /// </summary>
    private static string SwapLastTwo(RuleContext ctx, NodeProto n, string x)
    {
        var g = ctx.G;
        if (g.ConstantValue(x) is { } value)
        {
            int rank = value.Dims.Count;
            if (rank < 2)
                throw RuleContext.Unsupported(n, "1-D operands are not supported.");
            var perm = Enumerable.Range(0, rank).Select(i => (long)i).ToArray();
            (perm[rank - 1], perm[rank - 2]) = (perm[rank - 2], perm[rank - 1]);
            return g.Emit("Transpose", [x], Ints("perm", perm));
        }
        string shape = g.Shape(x);
        string batch = g.Emit("Slice", [shape, g.Int64s(0), g.Int64s(-2), g.Int64s(0)]);
        string lastTwo = g.Emit("Slice", [shape, g.Int64s(-2), g.Int64s(long.MaxValue), g.Int64s(0)]);
        string folded = g.Reshape(x, g.Emit("Concat", [g.Int64s(-1), lastTwo], Int("axis", 0)));
        string swapped = g.Emit("Transpose", [folded], Ints("perm", [0, 2, 1]));
        string swappedLastTwo = g.Emit("Gather", [lastTwo, g.Int64s(1, 0)], Int("axis", 0));
        return g.Reshape(swapped, g.Emit("Concat", [batch, swappedLastTwo], Int("axis", 0)));
    }

    private static string?[] MatMulJvp(RuleContext ctx, NodeProto n, string?[] d)
    {
        var g = ctx.G;
        string? a = d[0] is null ? null : g.Emit("MatMul", [d[0]!, n.Input[1]]);
        string? b = d[1] is null ? null : g.Emit("MatMul", [n.Input[0], d[1]!]);
        return [a is null ? b : b is null ? a : g.Add(a, b)];
    }
}
