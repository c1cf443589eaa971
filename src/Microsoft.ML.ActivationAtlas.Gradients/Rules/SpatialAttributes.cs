using Microsoft.ML.ActivationAtlas.Onnx.Protobuf;
using static Microsoft.ML.ActivationAtlas.Onnx.OnnxAttributes;

namespace Microsoft.ML.ActivationAtlas.Gradients.Rules;

/// <summary>Kernel, stride, dilation and padding of a convolution or pooling node, with defaults filled in.</summary>
internal sealed class SpatialAttributes
{
    public required long[] Kernel { get; init; }
    public required long[] Strides { get; init; }
    public required long[] Dilations { get; init; }
    public required long[] PadsBegin { get; init; }
    public required long[] PadsEnd { get; init; }
    public bool CeilMode { get; init; }
    public int Rank => Kernel.Length;

    public bool AnyStride => Strides.Any(s => s > 1);

    /// <summary>Reads the attributes; <paramref name="kernelFromWeight"/> supplies the kernel for Conv.</summary>
    public static SpatialAttributes Read(NodeProto node, long[]? kernelFromWeight)
    {
        long[] kernel = GetInts(node, "kernel_shape") ?? kernelFromWeight
            ?? throw RuleContext.Unsupported(node, "the kernel shape is neither an attribute nor a constant weight.");
        int k = kernel.Length;
        long[] strides = GetInts(node, "strides") ?? Enumerable.Repeat(1L, k).ToArray();
        long[] dilations = GetInts(node, "dilations") ?? Enumerable.Repeat(1L, k).ToArray();
        long[] pads = GetInts(node, "pads") ?? new long[2 * k];
        string autoPad = GetString(node, "auto_pad", "NOTSET");
        long[] begin = pads[..k], end = pads[k..];
        if (autoPad is "SAME_UPPER" or "SAME_LOWER")
        {
            if (strides.Any(s => s != 1))
                throw RuleContext.Unsupported(node, $"auto_pad={autoPad} with strides other than 1 depends on the input size.");
            for (int i = 0; i < k; i++)
            {
                long total = (kernel[i] - 1) * dilations[i];
                long small = total / 2, large = total - small;
                (begin[i], end[i]) = autoPad == "SAME_UPPER" ? (small, large) : (large, small);
            }
        }
        else if (autoPad == "VALID")
        {
            begin = new long[k];
            end = new long[k];
        }
        return new SpatialAttributes
        {
            Kernel = kernel, Strides = strides, Dilations = dilations, PadsBegin = begin, PadsEnd = end,
            CeilMode = GetInt(node, "ceil_mode", 0) != 0,
        };
    }

    public long[] Pads(long[] extraEnd)
        => PadsBegin.Concat(PadsEnd.Select((p, i) => p + extraEnd[i])).ToArray();

    /// <summary>ConvTranspose output_padding that makes its output at least as large as the forward input.</summary>
    public long[] MaxOutputPadding => Strides.Select(s => s - 1).ToArray();

    public long[] SpatialAxes => Enumerable.Range(2, Rank).Select(i => (long)i).ToArray();
}
