using Microsoft.ML.ActivationAtlas.Gradients.Internal;
using Microsoft.ML.ActivationAtlas.Onnx.Protobuf;
using static Microsoft.ML.ActivationAtlas.Onnx.OnnxAttributes;

namespace Microsoft.ML.ActivationAtlas.Gradients.Rules;

/// <summary>
/// Conv: the input gradient is a ConvTranspose with the same weights or, for an ungrouped stride-1 2-D convolution with
/// constant weights, the equivalent Conv with the weights' channels swapped and kernels flipped (ONNX Runtime's Conv
/// kernels are faster than its ConvTranspose at the same work); the tangent is a Conv without bias.
/// Strided convolutions keep ConvTranspose: on ONNX Runtime's CPU provider their Conv forms are slower at ResNet18's
/// shapes (80 and 224 px). The polyphase form (one Conv with the kernel split by stride phase into s*s*Cin output
/// channels, then DepthToSpace and a crop) does (s*ceil(k/s)/k)^2 times the work, and its DepthToSpace alone costs a
/// third to a half of the ConvTranspose it replaces; for 1x1 stride-2 kernels the Conv is cheap, but interleaving the
/// zeros (Pad of a 6-D view, or a broadcast Mul by a 0/1 mask) costs more than the whole ConvTranspose.
/// </summary>
internal static class ConvRules
{
    public static void Register(RuleTable table) => table.Add("Conv", Vjp, Jvp);

    private static SpatialAttributes Attributes(RuleContext ctx, NodeProto node)
    {
        if (ctx.IsActive(node.Input[1]) || (RuleContext.Input(node, 2) is { } b && ctx.IsActive(b)))
            throw RuleContext.Unsupported(node, "weights or bias that depend on the differentiation point are not supported.");
        long[]? kernel = ctx.G.ConstantValue(node.Input[1]) is { } w ? w.Dims.Skip(2).ToArray() : null;
        return SpatialAttributes.Read(node, kernel);
    }

    private static string?[] Vjp(RuleContext ctx, NodeProto node, string?[] dY)
    {
        var result = new string?[node.Input.Count];
        if (dY[0] is null || !ctx.IsActive(node.Input[0]))
            return result;
        var a = Attributes(ctx, node);
        var g = ctx.G;
        if (FlippedConv(g, node, dY[0]!, a) is { } viaConv)
        {
            result[0] = viaConv;
            return result;
        }
        long[]? exact = ExactOutputPadding(ctx, node.Input[0], node.Output[0], a);
        string dx = g.Emit("ConvTranspose", [dY[0]!, node.Input[1]],
            Ints("kernel_shape", a.Kernel), Ints("strides", a.Strides), Ints("dilations", a.Dilations),
            Ints("pads", a.Pads(new long[a.Rank])), Ints("output_padding", exact ?? a.MaxOutputPadding),
            Int("group", GetInt(node, "group", 1)));
        if (a.AnyStride && exact is null)
            dx = CropToInput(g, dx, node.Input[0], a);
        result[0] = dx;
        return result;
    }

    /// <summary>
    /// The ConvTranspose output_padding that gives exactly the forward input's spatial size, where the input's and the
    /// output's sizes are known before the graph runs (then no crop is needed); null otherwise.
    /// </summary>
    internal static long[]? ExactOutputPadding(RuleContext ctx, string x, string y, SpatialAttributes a)
    {
        if (ctx.Shapes.Spatial(x) is not { } input || ctx.Shapes.Spatial(y) is not { } output || input.Length != a.Rank || output.Length != a.Rank)
            return null;
        var padding = new long[a.Rank];
        for (int i = 0; i < a.Rank; i++)
        {
            long size = a.Strides[i] * (output[i] - 1) + a.Dilations[i] * (a.Kernel[i] - 1) + 1 - a.PadsBegin[i] - a.PadsEnd[i];
            padding[i] = input[i] - size;
            if (padding[i] < 0 || padding[i] >= a.Strides[i])
                return null;
        }
        return padding;
    }

    // dX = Conv(dY, W') with W'[ci, co, i, j] = W[co, ci, kh - 1 - i, kw - 1 - j] and pads d (k - 1) - p on each side:
    // the transpose of a stride-1 convolution is the correlation with the flipped kernel. Null where it does not apply.
    private static string? FlippedConv(GraphEmitter g, NodeProto node, string dy, SpatialAttributes a)
    {
        if (a.AnyStride || a.Rank != 2 || GetInt(node, "group", 1) != 1
            || g.ConstantValue(node.Input[1]) is not { } w || w.DataType != (int)TensorProto.Types.DataType.Float || w.Dims.Count != 4)
            return null;
        var pads = new long[4];
        for (int d = 0; d < 2; d++)
        {
            long reach = a.Dilations[d] * (a.Kernel[d] - 1);
            pads[d] = reach - a.PadsBegin[d];
            pads[2 + d] = reach - a.PadsEnd[d];
            if (pads[d] < 0 || pads[2 + d] < 0)
                return null;
        }
        string flipped = g.DerivedFloatTensor("conv-input-gradient-weights:" + node.Input[1], () =>
        {
            var v = Onnx.OnnxTensors.ToFloats(w);
            long co = w.Dims[0], ci = w.Dims[1], kh = w.Dims[2], kw = w.Dims[3];
            var t = new float[v.Length];
            for (long o = 0; o < co; o++)
                for (long i = 0; i < ci; i++)
                    for (long y = 0; y < kh; y++)
                        for (long x = 0; x < kw; x++)
                            t[((i * co + o) * kh + (kh - 1 - y)) * kw + (kw - 1 - x)] = v[((o * ci + i) * kh + y) * kw + x];
            return (t, [ci, co, kh, kw]);
        });
        return g.Emit("Conv", [dy, flipped], Ints("kernel_shape", a.Kernel), Ints("strides", [1, 1]), Ints("dilations", a.Dilations), Ints("pads", pads));
    }

    /// <summary>Crops the spatial axes of a transposed-convolution result to the forward input's size.</summary>
    internal static string CropToInput(GraphEmitter g, string dx, string x, SpatialAttributes a)
        => g.Emit("Slice", [dx, g.Int64s(new long[a.Rank]), g.ShapeFrom(x, 2), g.Int64s(a.SpatialAxes)]);

    private static string?[] Jvp(RuleContext ctx, NodeProto node, string?[] dX)
    {
        if (dX[0] is null)
            return [null];
        _ = Attributes(ctx, node);
        return [ctx.G.Emit("Conv", [dX[0]!, node.Input[1]], CopyExcept(node).ToArray())];
    }
}
