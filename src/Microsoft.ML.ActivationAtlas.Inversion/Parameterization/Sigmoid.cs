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
        for (int i = 0; i < output.Length; i++)
        {
            float y = output[i];
            inputGradient[i] = gradient[i] * y * (1f - y);
        }
    }
}
