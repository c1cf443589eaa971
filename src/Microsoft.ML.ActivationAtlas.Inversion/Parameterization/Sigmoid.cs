using System.Numerics;
using System.Numerics.Tensors;

namespace Microsoft.ML.ActivationAtlas.Inversion.Parameterization;

/// <summary>The logistic squashing of pixel values into [0, 1] and its (linearised) adjoint.</summary>
internal static class Sigmoid
{
    /// <summary>output = 1 / (1 + exp(-input)).</summary>
    public static void Forward(ReadOnlySpan<float> input, Span<float> output) => TensorPrimitives.Sigmoid(input, output);

    /// <summary>The adjoint of the Jacobian at the point whose forward output is <paramref name="output"/>: g * y * (1 - y).</summary>
    public static void Adjoint(ReadOnlySpan<float> output, ReadOnlySpan<float> gradient, Span<float> inputGradient)
    {
        int i = 0;
        if (Vector.IsHardwareAccelerated)
        {
            // (g y) (1 - y) as in the scalar loop, so the values are identical.
            for (; i + Vector<float>.Count <= output.Length; i += Vector<float>.Count)
            {
                var y = new Vector<float>(output[i..]);
                (new Vector<float>(gradient[i..]) * y * (Vector<float>.One - y)).CopyTo(inputGradient[i..]);
            }
        }
        for (; i < output.Length; i++)
        {
            float y = output[i];
            inputGradient[i] = gradient[i] * y * (1f - y);
        }
    }
}
