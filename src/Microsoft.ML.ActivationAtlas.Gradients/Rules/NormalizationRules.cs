using Microsoft.ML.ActivationAtlas.Gradients.Internal;
using Microsoft.ML.ActivationAtlas.Onnx.Protobuf;
using static Microsoft.ML.ActivationAtlas.Onnx.OnnxAttributes;

namespace Microsoft.ML.ActivationAtlas.Gradients.Rules;

/// <summary>BatchNormalization (inference: a per-channel scale), LRN (across channels) and LayerNormalization.</summary>
internal static class NormalizationRules
{
    public static void Register(RuleTable table)
    {
        table.Add("BatchNormalization", BatchNorm, BatchNorm);
        table.Add("LRN", LrnVjp, LrnJvp);
        table.Add("LayerNormalization", LayerNormVjp, LayerNormJvp);
    }

    /// <summary>
    /// LayerNormalization (opset 17) normalizes over the axes from <c>axis</c> on: y = xhat * scale + bias with
    /// xhat = (x - mean) r, r = 1 / sqrt(var + epsilon). Both modes use the same symmetric map
    /// P(v) = r (v - mean(v) - xhat mean(xhat v)): dx = P(dy scale) and dy = scale P(dx). The tensors are viewed
    /// as [rows, normalized elements] (Flatten at <c>axis</c>) so any axis and rank work.
    /// </summary>
    private static Func<string, string> LayerNormMap(RuleContext ctx, NodeProto n)
    {
        for (int i = 1; i < n.Input.Count; i++)
            if (n.Input[i].Length > 0 && ctx.IsActive(n.Input[i]))
                throw RuleContext.Unsupported(n, "scale or bias that depend on the differentiation point are not supported.");
        if (GetInt(n, "stash_type", 1) != 1)
            throw RuleContext.Unsupported(n, "only stash_type=1 (float statistics) is supported.");
        var g = ctx.G;
        long axis = GetInt(n, "axis", -1);
        float epsilon = GetFloat(n, "epsilon", 1e-5f);
        string x = g.Emit("Flatten", [n.Input[0]], Int("axis", axis));
        string centered = g.Sub(x, g.ReduceMean(x, [1], keepDims: true));
        string variance = g.ReduceMean(g.Mul(centered, centered), [1], keepDims: true);
        string r = g.Div(g.One, g.Emit("Sqrt", [g.Add(variance, g.FloatScalar(epsilon))]));
        string xhat = g.Mul(centered, r);
        string shape = g.Shape(n.Input[0]);
        return v =>
        {
            string flat = g.Emit("Flatten", [v], Int("axis", axis));
            string projected = g.Sub(g.Sub(flat, g.ReduceMean(flat, [1], keepDims: true)),
                g.Mul(xhat, g.ReduceMean(g.Mul(xhat, flat), [1], keepDims: true)));
            return g.Reshape(g.Mul(projected, r), shape);
        };
    }

    private static string?[] LayerNormVjp(RuleContext ctx, NodeProto n, string?[] dy)
    {
        var result = new string?[n.Input.Count];
        if (dy[0] is null || !ctx.IsActive(n.Input[0]))
            return result;
        if (dy.Skip(1).Any(d => d is not null))
            throw RuleContext.Unsupported(n, "gradients through the Mean or InvStdDev outputs are not supported.");
        var map = LayerNormMap(ctx, n);
        result[0] = map(ctx.G.Mul(dy[0]!, n.Input[1]));
        return result;
    }

    private static string?[] LayerNormJvp(RuleContext ctx, NodeProto n, string?[] dx)
    {
        var result = new string?[n.Output.Count];
        if (dx[0] is null)
            return result;
        var map = LayerNormMap(ctx, n);
        result[0] = ctx.G.Mul(map(dx[0]!), n.Input[1]);
        return result;
    }

    /// <summary>
    /// Inference batch normalization is y = k x + c per channel with k = scale / sqrt(var + eps); its derivative in
    /// both modes is another batch normalization with scale k, zero bias and mean, unit variance, no epsilon.
    /// </summary>
    private static string?[] BatchNorm(RuleContext ctx, NodeProto n, string?[] d)
    {
        var result = new string?[Math.Max(n.Input.Count, n.Output.Count)];
        if (d[0] is null || !ctx.IsActive(n.Input[0]))
            return result;
        for (int i = 1; i < n.Input.Count; i++)
            if (ctx.IsActive(n.Input[i]))
                throw RuleContext.Unsupported(n, "parameters that depend on the differentiation point are not supported.");
        if (GetInt(n, "training_mode", 0) != 0)
            throw RuleContext.Unsupported(n, "training_mode=1 (batch statistics) is not supported.");
        var g = ctx.G;
        float epsilon = GetFloat(n, "epsilon", 1e-5f);
        string k = g.Div(n.Input[1], g.Emit("Sqrt", [g.Add(n.Input[4], g.FloatScalar(epsilon))]));
        string zeros = g.Mul(n.Input[3], g.Zero);
        string ones = g.Add(zeros, g.One);
        result[0] = g.Emit("BatchNormalization", [d[0]!, k, zeros, zeros, ones], Float("epsilon", 0f));
        return result;
    }

    private sealed record Lrn(long Size, float Alpha, float Beta, float Bias, string S);

    /// <summary>S = bias + alpha/size * (window sum over channels of x^2), recomputed in the graph.</summary>
    private static Lrn Prepare(RuleContext ctx, NodeProto n)
    {
        var g = ctx.G;
        long size = GetInt(n, "size", 0);
        if (size <= 0)
            throw RuleContext.Unsupported(n, "the size attribute is missing.");
        float alpha = GetFloat(n, "alpha", 1e-4f), beta = GetFloat(n, "beta", 0.75f), bias = GetFloat(n, "bias", 1f);
        string x = n.Input[0];
        string windowSum = ChannelWindowSum(g, g.Mul(x, x), size, transposed: false);
        string s = g.Add(g.Mul(windowSum, g.FloatScalar(alpha / size)), g.FloatScalar(bias));
        return new Lrn(size, alpha, beta, bias, s);
    }

    /// <summary>
    /// Sums a [N,C,H,W] tensor over the LRN window of channels [c - floor((size-1)/2), c + ceil((size-1)/2)]
    /// (or its mirror image, for the transposed operation) by a 3-D convolution with a kernel of ones.
    /// </summary>
    private static string ChannelWindowSum(GraphEmitter g, string x, long size, bool transposed)
    {
        long before = (size - 1) / 2, after = size - 1 - before;
        if (transposed) (before, after) = (after, before);
        string kernel = g.FloatTensor(Enumerable.Repeat(1f, (int)size).ToArray(), [1, 1, size, 1, 1]);
        string volume = g.Unsqueeze(x, [1]);
        string summed = g.Emit("Conv", [volume, kernel], Ints("kernel_shape", [size, 1, 1]), Ints("pads", [before, 0, 0, after, 0, 0]));
        return g.Emit("Squeeze", [summed, g.Int64s(1)]);
    }

    private static string?[] LrnVjp(RuleContext ctx, NodeProto n, string?[] dy)
    {
        if (dy[0] is null || !ctx.IsActive(n.Input[0]))
            return [null];
        var g = ctx.G;
        var p = Prepare(ctx, n);
        // dx = dy * S^-beta - (2 alpha beta / size) * x * WindowSumT(dy * y / S)
        string direct = g.Mul(dy[0]!, g.Emit("Pow", [p.S, g.FloatScalar(-p.Beta)]));
        string t = g.Div(g.Mul(dy[0]!, n.Output[0]), p.S);
        string spread = ChannelWindowSum(g, t, p.Size, transposed: true);
        string cross = g.Mul(g.Mul(n.Input[0], spread), g.FloatScalar(2f * p.Alpha * p.Beta / p.Size));
        return [g.Sub(direct, cross)];
    }

    private static string?[] LrnJvp(RuleContext ctx, NodeProto n, string?[] dx)
    {
        if (dx[0] is null)
            return [null];
        var g = ctx.G;
        var p = Prepare(ctx, n);
        // dy = dx * S^-beta - (2 alpha beta / size) * (y / S) * WindowSum(x * dx)
        string direct = g.Mul(dx[0]!, g.Emit("Pow", [p.S, g.FloatScalar(-p.Beta)]));
        string spread = ChannelWindowSum(g, g.Mul(n.Input[0], dx[0]!), p.Size, transposed: false);
        string cross = g.Mul(g.Mul(g.Div(n.Output[0], p.S), spread), g.FloatScalar(2f * p.Alpha * p.Beta / p.Size));
        return [g.Sub(direct, cross)];
    }
}
