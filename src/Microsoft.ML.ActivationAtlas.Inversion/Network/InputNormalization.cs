namespace Microsoft.ML.ActivationAtlas.Inversion.Network;

/// <summary>
/// The affine preprocessing between a [0, 1] RGB image and a network's input:
/// <c>x[c] = scale * image[order[c]] - mean[c, (y, x)]</c> (mean per channel or a full mean image), then
/// divided by a per-channel standard deviation. Its adjoint maps an input gradient back to image space.
/// </summary>
public sealed class InputNormalization
{
    private readonly int[] _order;
    private readonly float[] _mean;
    private readonly float[] _std;

    /// <summary>Creates the preprocessing.</summary>
    /// <param name="scale">Multiplies the [0, 1] pixel (e.g. 255).</param>
    /// <param name="channelOrder">Source channel of each input channel (e.g. [2, 1, 0] for BGR); null keeps RGB.</param>
    /// <param name="mean">Subtracted after scaling: 3 values (per channel) or 3 x height x width (a mean image); null for none.</param>
    /// <param name="std">Per-channel divisor after the mean; null for none.</param>
    public InputNormalization(float scale = 1f, int[]? channelOrder = null, float[]? mean = null, float[]? std = null)
    {
        if (!(scale != 0) || !float.IsFinite(scale))
            throw new ArgumentOutOfRangeException(nameof(scale), "The input scale must be finite and non-zero.");
        _order = channelOrder ?? [0, 1, 2];
        if (_order.Length != 3 || _order.OrderBy(c => c).ToArray() is not [0, 1, 2])
            throw new ArgumentException("The channel order must be a permutation of 0, 1, 2.", nameof(channelOrder));
        _mean = mean ?? [0f, 0f, 0f];
        if (_mean.Length % 3 != 0 || _mean.Length == 0)
            throw new ArgumentException("The mean must have 3 values or 3 x height x width values.", nameof(mean));
        _std = std ?? [1f, 1f, 1f];
        if (_std.Length != 3 || _std.Any(s => !(s > 0)))
            throw new ArgumentException("The standard deviation must have 3 positive values.", nameof(std));
        Scale = scale;
    }

    /// <summary>The identity preprocessing.</summary>
    public static InputNormalization Identity { get; } = new();

    /// <summary>torchvision's ImageNet normalisation: (x - [0.485, 0.456, 0.406]) / [0.229, 0.224, 0.225].</summary>
    public static InputNormalization ImageNet { get; } = new(1f, null, [0.485f, 0.456f, 0.406f], [0.229f, 0.224f, 0.225f]);

    /// <summary>Multiplies the [0, 1] pixel.</summary>
    public float Scale { get; }

    /// <summary>Source channel of each network input channel.</summary>
    public ReadOnlySpan<int> ChannelOrder => _order;

    /// <summary>The subtracted mean: 3 values or a 3 x height x width mean image.</summary>
    public ReadOnlySpan<float> MeanValues => _mean;

    /// <summary>Per-channel standard deviation.</summary>
    public ReadOnlySpan<float> StandardDeviation => _std;

    /// <summary>Applies the preprocessing to a batch of planar images <c>[batch, 3, h, w]</c>.</summary>
    public void Forward(ReadOnlySpan<float> images, Span<float> output, int batch, int height, int width)
    {
        int plane = height * width;
        bool perPixel = _mean.Length > 3;
        if (perPixel && _mean.Length != 3 * plane)
            throw new InvalidOperationException($"The mean image has {_mean.Length / 3} pixels per channel but the network input has {plane}.");
        for (int b = 0; b < batch; b++)
            for (int c = 0; c < 3; c++)
            {
                ReadOnlySpan<float> src = images.Slice((b * 3 + _order[c]) * plane, plane);
                Span<float> dst = output.Slice((b * 3 + c) * plane, plane);
                float k = Scale / _std[c];
                if (perPixel)
                {
                    System.Numerics.Tensors.TensorPrimitives.Multiply(src, Scale, dst);
                    System.Numerics.Tensors.TensorPrimitives.Subtract(dst, _mean.AsSpan(c * plane, plane), dst);
                    System.Numerics.Tensors.TensorPrimitives.Multiply(dst, 1f / _std[c], dst);
                }
                else
                {
                    System.Numerics.Tensors.TensorPrimitives.Multiply(src, k, dst);
                    System.Numerics.Tensors.TensorPrimitives.Add(dst, -_mean[c] / _std[c], dst);
                }
            }
    }

    /// <summary>The adjoint of the linear part: image gradient from input gradient (overwrites).</summary>
    public void Adjoint(ReadOnlySpan<float> inputGradient, Span<float> imageGradient, int batch, int height, int width)
    {
        int plane = height * width;
        for (int b = 0; b < batch; b++)
            for (int c = 0; c < 3; c++)
                System.Numerics.Tensors.TensorPrimitives.Multiply(inputGradient.Slice((b * 3 + c) * plane, plane), Scale / _std[c],
                    imageGradient.Slice((b * 3 + _order[c]) * plane, plane));
    }
}
