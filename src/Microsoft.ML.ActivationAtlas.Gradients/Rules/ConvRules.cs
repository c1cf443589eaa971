using Microsoft.ML.ActivationAtlas.Gradients.Internal;
using Microsoft.ML.ActivationAtlas.Onnx.Protobuf;
using static Microsoft.ML.ActivationAtlas.Onnx.OnnxAttributes;

namespace Microsoft.ML.ActivationAtlas.Gradients.Rules;

/// <summary>Conv: the input gradient is a ConvTranspose with the same weights; the tangent is a Conv without bias.</summary>
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
        string dx = g.Emit("ConvTranspose", [dY[0]!, node.Input[1]],
            Ints("kernel_shape", a.Kernel), Ints("strides", a.Strides), Ints("dilations", a.Dilations),
            Ints("pads", a.Pads(new long[a.Rank])), Ints("output_padding", a.MaxOutputPadding),
            Int("group", GetInt(node, "group", 1)));
        if (a.AnyStride)
            dx = CropToInput(g, dx, node.Input[0], a);
        result[0] = dx;
        return result;
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
