namespace Microsoft.ML.ActivationAtlas.Inversion.Parameterization;

/// <summary>
/// lucid's decorrelated colour space: every pixel's 3-vector is multiplied by the square root of the ImageNet colour
/// correlation matrix (<c>color_correlation_svd_sqrt</c>), normalised by its largest column norm.
/// </summary>
internal static class ColorDecorrelation
{
    private static readonly float[] s_matrix = Build();

    /// <summary>The normalised 3x3 matrix, row-major: output channel = row.</summary>
    public static ReadOnlySpan<float> Matrix => s_matrix;

    /// <summary>out[c] = sum_j M[c, j] in[j] for every pixel of a planar image <c>[3, pixels]</c>.</summary>
    public static void Forward(ReadOnlySpan<float> image, Span<float> output, int pixels) => Apply(image, output, pixels, transpose: false);

    /// <summary>The adjoint: in[j] = sum_c M[c, j] out[c] (overwrites <paramref name="output"/>).</summary>
    public static void Adjoint(ReadOnlySpan<float> gradient, Span<float> output, int pixels) => Apply(gradient, output, pixels, transpose: true);

    private static void Apply(ReadOnlySpan<float> src, Span<float> dst, int pixels, bool transpose)
    {
        var m = s_matrix;
        ReadOnlySpan<float> s0 = src[..pixels], s1 = src.Slice(pixels, pixels), s2 = src.Slice(2 * pixels, pixels);
        for (int c = 0; c < 3; c++)
        {
            float a = transpose ? m[c] : m[3 * c], b = transpose ? m[3 + c] : m[3 * c + 1], d = transpose ? m[6 + c] : m[3 * c + 2];
            Span<float> o = dst.Slice(c * pixels, pixels);
            System.Numerics.Tensors.TensorPrimitives.Multiply(s0, a, o);
            System.Numerics.Tensors.TensorPrimitives.MultiplyAdd(s1, b, o, o);
            System.Numerics.Tensors.TensorPrimitives.MultiplyAdd(s2, d, o, o);
        }
    }

    private static float[] Build()
    {
        double[] m = [0.26, 0.09, 0.02, 0.27, 0.00, -0.05, 0.27, -0.09, 0.03];
        double maxNorm = 0;
        for (int j = 0; j < 3; j++)
            maxNorm = Math.Max(maxNorm, Math.Sqrt(m[j] * m[j] + m[3 + j] * m[3 + j] + m[6 + j] * m[6 + j]));
        return m.Select(v => (float)(v / maxNorm)).ToArray();
    }
}
