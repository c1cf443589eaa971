using Microsoft.ML.ActivationAtlas.Onnx.Protobuf;
using static Microsoft.ML.ActivationAtlas.Onnx.OnnxAttributes;

namespace Microsoft.ML.ActivationAtlas.Gradients.Rules;

/// <summary>
/// GridSample (bilinear, zeros or border padding, either align_corners) with respect to its input image; the grid
/// must not depend on the differentiation point. The op is linear in the image: forward mode samples the tangent
/// with the same grid, and reverse mode scatters each output gradient back onto the four taps it was read from,
/// with the bilinear weights recomputed from the grid exactly as the forward op computes them.
/// </summary>
internal static class SamplingRules
{
    public static void Register(RuleTable table) => table.Add("GridSample", Vjp, Jvp);

    private static void Check(RuleContext ctx, NodeProto n)
    {
        string mode = GetString(n, "mode", "bilinear");
        if (mode is not ("bilinear" or "linear"))
            throw RuleContext.Unsupported(n, $"mode '{mode}' is not supported (only bilinear).");
        string padding = GetString(n, "padding_mode", "zeros");
        if (padding is not ("zeros" or "border"))
            throw RuleContext.Unsupported(n, $"padding_mode '{padding}' is not supported (only zeros and border).");
        if (ctx.IsActive(n.Input[1]))
            throw RuleContext.Unsupported(n, "the grid depends on the differentiation point (only the image's gradient is supported).");
    }

    private static string?[] Jvp(RuleContext ctx, NodeProto n, string?[] d)
    {
        if (d[0] is null)
            return [null];
        Check(ctx, n);
        return [ctx.G.Emit("GridSample", [d[0]!, n.Input[1]], CopyExcept(n).ToArray())];
    }

    private static string?[] Vjp(RuleContext ctx, NodeProto n, string?[] dy)
    {
        var result = new string?[n.Input.Count];
        if (dy[0] is null || !ctx.IsActive(n.Input[0]))
            return result;
        Check(ctx, n);
        var g = ctx.G;
        string x = n.Input[0], grid = n.Input[1];
        bool align = GetInt(n, "align_corners", 0) != 0, border = GetString(n, "padding_mode", "zeros") == "border";
        string shape = g.Shape(x);
        string h = g.Emit("Gather", [shape, g.Int64Scalar(2)], Int("axis", 0));
        string w = g.Emit("Gather", [shape, g.Int64Scalar(3)], Int("axis", 0));
        string hf = g.ToFloat(h);
        string wf = g.ToFloat(w);
        string hMax = g.Sub(hf, g.One), wMax = g.Sub(wf, g.One);

        // Source pixel coordinates of every output pixel, [N, Ho, Wo], as the op unnormalises them.
        string Unnormalize(long component, string size, string max)
        {
            string c = g.Emit("Gather", [grid, g.Int64Scalar(component)], Int("axis", 3));
            string p = align
                ? g.Mul(g.Mul(g.Add(c, g.One), g.FloatScalar(0.5f)), max)
                : g.Mul(g.Sub(g.Mul(g.Add(c, g.One), size), g.One), g.FloatScalar(0.5f));
            return border ? g.Emit("Min", [g.Emit("Max", [p, g.Zero]), max]) : p;
        }
        string ix = Unnormalize(0, wf, wMax), iy = Unnormalize(1, hf, hMax);
        string x0 = g.Emit("Floor", [ix]), y0 = g.Emit("Floor", [iy]);
        string fx = g.Sub(ix, x0), fy = g.Sub(iy, y0);
        string x1 = g.Add(x0, g.One), y1 = g.Add(y0, g.One);
        string gx = g.Sub(g.One, fx), gy = g.Sub(g.One, fy);

        // Flat index and weight of each tap; taps outside the image read zero and receive nothing.
        string flatShape = g.Emit("Concat", [g.Emit("Slice", [g.Shape(grid), g.Int64s(0), g.Int64s(1), g.Int64s(0)]), g.Int64s(1, -1)], Int("axis", 0));
        string Inside(string v, string max) => g.Emit("And", [g.Emit("GreaterOrEqual", [v, g.Zero]), g.Emit("LessOrEqual", [v, max])]);
        string Clamp(string v, string max) => g.Emit("Min", [g.Emit("Max", [v, g.Zero]), max]);
        var indices = new List<string>();
        var weights = new List<string>();
        foreach (var (ty, wy) in new[] { (y0, gy), (y1, fy) })
            foreach (var (tx, wx) in new[] { (x0, gx), (x1, fx) })
            {
                string valid = g.ToFloat(g.Emit("And", [Inside(tx, wMax), Inside(ty, hMax)]));
                weights.Add(g.Reshape(g.Mul(g.Mul(wy, wx), valid), flatShape));
                string index = g.Add(g.Mul(g.ToInt64(Clamp(ty, hMax)), w), g.ToInt64(Clamp(tx, wMax)));
                indices.Add(g.Reshape(index, flatShape));
            }

        // dX[n, c, idx] += w * dY[n, c, p] over the four taps: one ScatterElements with reduction "add".
        string dyFlat = g.Reshape(dy[0]!, g.Int64s(0, 0, -1));
        string updates = g.Emit("Concat", weights.Select(wt => g.Mul(dyFlat, wt)), Int("axis", 2));
        string index4 = g.Expand(g.Emit("Concat", indices, Int("axis", 2)), g.Shape(updates));
        string zerosShape = g.Emit("Concat", [g.Emit("Slice", [shape, g.Int64s(0), g.Int64s(2), g.Int64s(0)]), g.Reshape(g.Mul(h, w), g.Int64s(1))], Int("axis", 0));
        string zeros = g.Emit("ConstantOfShape", [zerosShape], Tensor("value", Internal.GraphEmitter.FloatValue(0f)));
        string scattered = g.Emit("ScatterElements", [zeros, index4, updates], Int("axis", 2), String("reduction", "add"));
        result[0] = g.Reshape(scattered, shape);
        return result;
    }
}
