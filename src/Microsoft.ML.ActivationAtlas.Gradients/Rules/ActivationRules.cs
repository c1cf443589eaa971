using Microsoft.ML.ActivationAtlas.Onnx.Protobuf;
using static Microsoft.ML.ActivationAtlas.Onnx.OnnxAttributes;

namespace Microsoft.ML.ActivationAtlas.Gradients.Rules;

/// <summary>
/// Element-wise activations: Relu (mask; optional redirection), Clip (ReLU6), LeakyRelu, Sigmoid, Tanh,
/// HardSigmoid, HardSwish, Softmax (any axis), Erf (GELU), and the unary math (Exp, Log, Sqrt, Reciprocal, Neg, Abs).
/// </summary>
internal static class ActivationRules
{
    public static void Register(RuleTable table)
    {
        table.Add("Relu", ReluVjp, ReluMasked);
        table.Add("Clip", (ctx, n, dy) => Masked(ctx, n, dy, ClipMask(ctx, n)), (ctx, n, dx) => Masked(ctx, n, dx, ClipMask(ctx, n)));
        AddFactor(table, "LeakyRelu", (ctx, n) =>
        {
            var g = ctx.G;
            float alpha = GetFloat(n, "alpha", 0.01f);
            return g.Where(g.Emit("Greater", [n.Input[0], g.Zero]), g.One, g.FloatScalar(alpha));
        });
        AddFactor(table, "Sigmoid", (ctx, n) => ctx.G.Mul(n.Output[0], ctx.G.Sub(ctx.G.One, n.Output[0])));
        AddFactor(table, "Tanh", (ctx, n) => ctx.G.Sub(ctx.G.One, ctx.G.Mul(n.Output[0], n.Output[0])));
        AddFactor(table, "HardSigmoid", (ctx, n) =>
        {
            var g = ctx.G;
            float alpha = GetFloat(n, "alpha", 0.2f), beta = GetFloat(n, "beta", 0.5f);
            string z = g.Add(g.Mul(n.Input[0], g.FloatScalar(alpha)), g.FloatScalar(beta));
            string inside = g.Emit("And", [g.Emit("Greater", [z, g.Zero]), g.Emit("Less", [z, g.One])]);
            return g.Where(inside, g.FloatScalar(alpha), g.Zero);
        });
        AddFactor(table, "HardSwish", (ctx, n) =>
        {
            // y = x * clip(x/6 + 1/2, 0, 1): dy/dx = 0 below -3, 1 above 3, x/3 + 1/2 between.
            var g = ctx.G;
            string x = n.Input[0];
            string middle = g.Add(g.Mul(x, g.FloatScalar(1f / 3f)), g.FloatScalar(0.5f));
            string upper = g.Where(g.Emit("Greater", [x, g.FloatScalar(3f)]), g.One, middle);
            return g.Where(g.Emit("Less", [x, g.FloatScalar(-3f)]), g.Zero, upper);
        });
        AddFactor(table, "Exp", (ctx, n) => n.Output[0]);
        AddFactor(table, "Log", (ctx, n) => ctx.G.Div(ctx.G.One, n.Input[0]));
        AddFactor(table, "Sqrt", (ctx, n) => ctx.G.Div(ctx.G.FloatScalar(0.5f), n.Output[0]));
        AddFactor(table, "Neg", (ctx, n) => ctx.G.FloatScalar(-1f));
        AddFactor(table, "Erf", (ctx, n) =>
        {
            // d erf(x)/dx = 2/sqrt(pi) exp(-x^2)  (GELU's erf form)
            var g = ctx.G;
            string x = n.Input[0];
            return g.Mul(g.Emit("Exp", [g.Neg(g.Mul(x, x))]), g.FloatScalar((float)(2.0 / Math.Sqrt(Math.PI))));
        });
        AddFactor(table, "Reciprocal", (ctx, n) => ctx.G.Neg(ctx.G.Mul(n.Output[0], n.Output[0])));
        AddFactor(table, "Abs", (ctx, n) => ctx.G.Emit("Sign", [n.Input[0]]));
        table.Add("Softmax", Softmax, Softmax);
    }

    /// <summary>Registers an element-wise op whose derivative is a factor: dX = dY * f, dY = dX * f.</summary>
    private static void AddFactor(RuleTable table, string op, Func<RuleContext, NodeProto, string> factor)
    {
        table.Add(op,
            (ctx, n, dy) => Scale(ctx, n, dy[0], ctx.IsActive(n.Input[0]), factor),
            (ctx, n, dx) => Scale(ctx, n, dx[0], true, factor));
    }

    private static string?[] Scale(RuleContext ctx, NodeProto n, string? d, bool wanted, Func<RuleContext, NodeProto, string> factor)
    {
        var result = new string?[Math.Max(n.Input.Count, n.Output.Count)];
        if (d is not null && wanted)
            result[0] = ctx.G.Mul(d, factor(ctx, n));
        return result;
    }

    /// <summary>A ReLU's derivative mask from its output <paramref name="y"/> (or a max-pool of it): y &gt; 0.</summary>
    internal static string ReluMask(Internal.GraphEmitter g, string y) => g.Emit("Greater", [y, g.Zero]);

    private static string ClipMask(RuleContext ctx, NodeProto n)
    {
        var g = ctx.G;
        string x = n.Input[0];
        string? min = RuleContext.Input(n, 1), max = RuleContext.Input(n, 2);
        if ((min is not null && ctx.IsActive(min)) || (max is not null && ctx.IsActive(max)))
            throw RuleContext.Unsupported(n, "bounds that depend on the differentiation point are not supported.");
        string? lower = min is null ? null : g.Emit("Greater", [x, min]);
        string? upper = max is null ? null : g.Emit("Less", [x, max]);
        return (lower, upper) switch
        {
            (null, null) => g.Emit("Equal", [x, x]),
            (null, _) => upper!,
            (_, null) => lower!,
            _ => g.Emit("And", [lower!, upper!]),
        };
    }

    private static string?[] Masked(RuleContext ctx, NodeProto n, string?[] d, string? mask)
    {
        var result = new string?[Math.Max(n.Input.Count, n.Output.Count)];
        if (d[0] is not null && ctx.IsActive(n.Input[0]))
            result[0] = ctx.G.MulByMask(d[0]!, mask!);
        return result;
    }

    // Both modes: d times the mask, except that a ReLU feeding only a max-pool passes d through, the pool's rule masking
    // it (PoolingRules; the builder offers that only without redirection).
    private static string?[] ReluMasked(RuleContext ctx, NodeProto n, string?[] d)
        => ctx.ReluMaskedAtMaxPool.Contains(n.Output[0])
            ? [ctx.IsActive(n.Input[0]) ? d[0] : null]
            : Masked(ctx, n, d, d[0] is null ? null : ReluMask(ctx.G, n.Output[0]));

    private static string?[] ReluVjp(RuleContext ctx, NodeProto n, string?[] dy)
    {
        if (!ctx.Settings.ReluRedirection || dy[0] is null || !ctx.IsActive(n.Input[0]))
            return ReluMasked(ctx, n, dy);
        // Lucid's redirected ReLU gradient: where no gradient gets through the ReLU for an example, let it
        // through except where it would push an already negative input further down (ascent convention).
        var g = ctx.G;
        string x = n.Input[0], grad = dy[0]!;
        string negative = g.Emit("Less", [x, g.Zero]);
        string reluGrad = g.Where(negative, g.Zero, grad);
        string pushingLower = g.Emit("And", [negative, g.Emit("Less", [grad, g.Zero])]);
        string redirected = g.Where(pushingLower, g.Zero, grad);
        string magnitude = g.Emit("ReduceSum", [g.Emit("Abs", [g.Emit("Flatten", [reluGrad], Int("axis", 1))]), g.Int64s(1)],
            Int("keepdims", 1));
        string rankMinusOne = g.Sub(g.Emit("Shape", [g.Shape(x)]), g.Int64s(1));
        string onesTail = g.Emit("ConstantOfShape", [rankMinusOne], Tensor("value", Internal.GraphEmitter.Int64Value(1)));
        string perExample = g.Reshape(magnitude, g.Emit("Concat", [g.Int64s(-1), onesTail], Int("axis", 0)));
        string passes = g.Emit("Greater", [perExample, g.Zero]);
        return [g.Where(passes, reluGrad, redirected)];
    }

    private static string?[] Softmax(RuleContext ctx, NodeProto n, string?[] d)
    {
        // The softmax Jacobian is symmetric: both modes compute y * (d - sum(d * y, axis)).
        if (d[0] is null || !ctx.IsActive(n.Input[0]))
            return [null];
        var g = ctx.G;
        long axis = GetInt(n, "axis", -1);
        string y = n.Output[0];
        string dot = g.ReduceSum(g.Mul(d[0]!, y), [axis], keepDims: true);
        return [g.Mul(y, g.Sub(d[0]!, dot))];
    }
}
