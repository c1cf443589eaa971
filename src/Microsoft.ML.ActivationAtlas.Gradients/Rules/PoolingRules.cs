using Microsoft.ML.ActivationAtlas.Gradients.Internal;
using Microsoft.ML.ActivationAtlas.Onnx.Protobuf;
using static Microsoft.ML.ActivationAtlas.Onnx.OnnxAttributes;

namespace Microsoft.ML.ActivationAtlas.Gradients.Rules;

/// <summary>
/// MaxPool (through its Indices output and ScatterElements with add, so overlapping windows accumulate),
/// AveragePool (count_include_pad both ways, ceil_mode) and GlobalAveragePool.
/// </summary>
internal static class PoolingRules
{
    public static void Register(RuleTable table)
    {
        table.Add("MaxPool", MaxPoolVjp, MaxPoolJvp);
        table.Add("AveragePool", AveragePoolVjp, AveragePoolJvp);
        table.Add("GlobalAveragePool", GlobalAveragePoolVjp, GlobalAveragePoolJvp);
    }

    /// <summary>Makes the forward MaxPool node also return its Indices, and returns that tensor's name.</summary>
    private static string Indices(RuleContext ctx, NodeProto node)
    {
        if (GetInt(node, "storage_order", 0) != 0)
            throw RuleContext.Unsupported(node, "storage_order=1 is not supported.");
        if (node.Output.Count > 1 && node.Output[1].Length > 0)
            return node.Output[1];
        string name = ctx.G.Fresh(node.Name + "_indices");
        if (node.Output.Count > 1) node.Output[1] = name;
        else node.Output.Add(name);
        return name;
    }

    private static string?[] MaxPoolVjp(RuleContext ctx, NodeProto node, string?[] dY)
    {
        if (dY[0] is null || !ctx.IsActive(node.Input[0]))
            return [null];
        if (ctx.Settings.MaxPoolRelaxation)
            return [AveragePoolBackward(ctx, node, node.Input[0], dY[0]!, countIncludePad: false)];
        string indices = Indices(ctx, node);
        return [ctx.G.ScatterAdd(node.Input[0], indices, MaskOfLoneRelu(ctx, node, dY[0]!))];
    }

    private static string?[] MaxPoolJvp(RuleContext ctx, NodeProto node, string?[] dX)
    {
        var result = new string?[node.Output.Count];
        if (dX[0] is null)
            return result;
        var g = ctx.G;
        if (ctx.Settings.MaxPoolRelaxation)
        {
            // The transpose of the relaxed reverse rule: the tangent averaged over each window, padding not counted.
            if (GetInts(node, "dilations") is { } dilations && dilations.Any(d => d != 1))
                throw RuleContext.Unsupported(node, "max-pool relaxation of dilated windows is not supported.");
            var attributes = CopyExcept(node, "dilations", "storage_order").Append(Int("count_include_pad", 0));
            result[0] = g.Emit("AveragePool", [dX[0]!], attributes.ToArray());
            return result;
        }
        string indices = Indices(ctx, node);
        string gathered = g.Emit("GatherElements", [g.Flat(dX[0]!), g.Flat(indices)], Int("axis", 0));
        result[0] = MaskOfLoneRelu(ctx, node, g.Reshape(gathered, g.Shape(node.Output[0])));
        return result;
    }

    // Where the pool's input is the output of a ReLU that feeds nothing else, that ReLU's derivative mask, applied here to
    // the pooled tensor: each window's derivative goes to the element holding its maximum, which is positive exactly where
    // the pooled value is. The ReLU's own rule then passes the derivative through.
    private static string MaskOfLoneRelu(RuleContext ctx, NodeProto node, string d)
        => ctx.ReluMaskedAtMaxPool.Contains(node.Input[0])
            ? ctx.G.MulByMask(d, ActivationRules.ReluMask(ctx.G, node.Output[0]))
            : d;

    private static string?[] AveragePoolVjp(RuleContext ctx, NodeProto node, string?[] dY)
    {
        if (dY[0] is null || !ctx.IsActive(node.Input[0]))
            return [null];
        bool include = GetInt(node, "count_include_pad", 0) != 0;
        return [AveragePoolBackward(ctx, node, node.Input[0], dY[0]!, include)];
    }

    private static string?[] AveragePoolJvp(RuleContext ctx, NodeProto node, string?[] dX)
        => dX[0] is null ? [null] : [ctx.G.Emit("AveragePool", [dX[0]!], CopyExcept(node).ToArray())];

    /// <summary>
    /// The input gradient of an average pool with the node's window: each output gradient is divided by its
    /// window's divisor, then spread back over the window by a transposed convolution with a kernel of ones.
    /// Works per channel by folding channels into the batch axis.
    /// </summary>
    internal static string AveragePoolBackward(RuleContext ctx, NodeProto node, string x, string dy, bool countIncludePad)
    {
        var g = ctx.G;
        var a = SpatialAttributes.Read(node, null);
        if (a.Dilations.Any(d => d != 1))
            throw RuleContext.Unsupported(node, "dilated pooling windows are not supported.");
        int k = a.Rank;
        long[] extra = a.CeilMode ? a.Strides.Select(s => s - 1).ToArray() : new long[k];
        long windowSize = a.Kernel.Aggregate(1L, (p, v) => p * v);
        string kernel = g.FloatTensor(Enumerable.Repeat(1f, (int)windowSize).ToArray(), [1, 1, .. a.Kernel]);

        // Divisor of every window, computed once for one channel: [1,1,h,w].
        string onesShape = g.Emit("Concat", [g.Int64s(1, 1), g.ShapeFrom(x, 2)], Int("axis", 0));
        string onesX = g.Emit("ConstantOfShape", [onesShape], Tensor("value", GraphEmitter.FloatValue(1f)));
        string count;
        if (countIncludePad)
        {
            string padded = g.Emit("Pad", [onesX, g.Int64s([0, 0, .. a.PadsBegin, 0, 0, .. a.PadsEnd]), g.One]);
            count = g.Emit("Conv", [padded, kernel], Ints("kernel_shape", a.Kernel), Ints("strides", a.Strides),
                Ints("pads", [.. new long[k], .. extra]));
        }
        else
        {
            count = g.Emit("Conv", [onesX, kernel], Ints("kernel_shape", a.Kernel), Ints("strides", a.Strides),
                Ints("pads", a.Pads(extra)));
        }

        string foldedShape = g.Emit("Concat", [g.Int64s(-1, 1), g.ShapeFrom(dy, 2)], Int("axis", 0));
        string scaled = g.Div(g.Reshape(dy, foldedShape), count);
        long[]? exact = a.CeilMode ? null : ConvRules.ExactOutputPadding(ctx, x, node.Output[0], a);
        string dx = g.Emit("ConvTranspose", [scaled, kernel], Ints("kernel_shape", a.Kernel), Ints("strides", a.Strides),
            Ints("pads", a.Pads(extra)), Ints("output_padding", exact ?? a.MaxOutputPadding));
        if (a.AnyStride && exact is null)
            dx = ConvRules.CropToInput(g, dx, x, a);
        return g.Reshape(dx, g.Shape(x));
    }

    private static string?[] GlobalAveragePoolVjp(RuleContext ctx, NodeProto node, string?[] dY)
    {
        if (dY[0] is null || !ctx.IsActive(node.Input[0]))
            return [null];
        var g = ctx.G;
        string x = node.Input[0];
        string count = g.Div(g.SizeAsFloat(x), g.SizeAsFloat(node.Output[0]));
        return [g.Div(g.Expand(dY[0]!, g.Shape(x)), count)];
    }

    private static string?[] GlobalAveragePoolJvp(RuleContext ctx, NodeProto node, string?[] dX)
        => dX[0] is null ? [null] : [ctx.G.Emit("GlobalAveragePool", [dX[0]!])];
}
