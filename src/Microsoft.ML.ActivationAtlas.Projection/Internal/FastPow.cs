using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Microsoft.ML.ActivationAtlas.Projection.Internal;

/// <summary>
/// <c>x^y</c> for positive <c>x</c> as <c>exp2(y log2 x)</c> with short polynomials (relative error under 3.5e-6 for |y| up to 1, growing with |y|), in
/// scalar and 8-lane forms. The UMAP layout gradients call it hundreds of millions of times; the library <c>pow</c>
/// is several times slower and has no vector form. <c>x = 0</c> gives a value below 1e-33 rather than 0.
/// </summary>
internal static class FastPow
{
    // Least-squares (Chebyshev) fits: log2(1 + t) on t in [0, 1) to 8e-7 absolute, 2^f on f in [0, 1) to 2.3e-7 relative.
    private const float L1 = 1.4426337077061309f, L2 = -0.7202028408542892f, L3 = 0.4717224700363616f, L4 = -0.32148476516182267f,
        L5 = 0.1886540643610659f, L6 = -0.07592161239401035f, L7 = 0.014598750838460774f, L0 = 8.110769176283839e-07f;
    private const float E0 = 0.9999997696329798f, E1 = 0.6931567767014707f, E2 = 0.24013169185806255f, E3 = 0.05587655690014261f,
        E4 = 0.008940582498298462f, E5 = 0.0018943794347428002f;

    /// <summary><paramref name="x"/> (at least 0, finite) to the power <paramref name="y"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Pow(float x, float y) => Exp2(y * Log2(x));

    /// <summary>log2 of a positive finite value (0 gives -127).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Log2(float x)
    {
        int bits = BitConverter.SingleToInt32Bits(x);
        float e = (bits >> 23) - 127;
        float t = BitConverter.Int32BitsToSingle((bits & 0x007FFFFF) | 0x3F800000) - 1f;
        float p = MathF.FusedMultiplyAdd(MathF.FusedMultiplyAdd(MathF.FusedMultiplyAdd(MathF.FusedMultiplyAdd(MathF.FusedMultiplyAdd(MathF.FusedMultiplyAdd(MathF.FusedMultiplyAdd(L7, t, L6), t, L5), t, L4), t, L3), t, L2), t, L1), t, L0);
        return e + p;
    }

    /// <summary>2 to the power <paramref name="y"/>, with <paramref name="y"/> clamped to [-126, 126].</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Exp2(float y)
    {
        y = Math.Clamp(y, -126f, 126f);
        float i = MathF.Floor(y);
        float f = y - i;
        float p = MathF.FusedMultiplyAdd(MathF.FusedMultiplyAdd(MathF.FusedMultiplyAdd(MathF.FusedMultiplyAdd(MathF.FusedMultiplyAdd(E5, f, E4), f, E3), f, E2), f, E1), f, E0);
        return BitConverter.Int32BitsToSingle(BitConverter.SingleToInt32Bits(p) + ((int)i << 23));
    }

    /// <summary>Lane-wise <see cref="Pow(float, float)"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Pow(Vector256<float> x, Vector256<float> y) => Exp2(y * Log2(x));

    /// <summary>Lane-wise <see cref="Log2(float)"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Log2(Vector256<float> x)
    {
        var bits = x.AsInt32();
        var e = Vector256.ConvertToSingle((bits >> 23) - Vector256.Create(127));
        var t = ((bits & Vector256.Create(0x007FFFFF)) | Vector256.Create(0x3F800000)).AsSingle() - Vector256<float>.One;
        var p = Vector256.FusedMultiplyAdd(Vector256.Create(L7), t, Vector256.Create(L6));
        p = Vector256.FusedMultiplyAdd(p, t, Vector256.Create(L5));
        p = Vector256.FusedMultiplyAdd(p, t, Vector256.Create(L4));
        p = Vector256.FusedMultiplyAdd(p, t, Vector256.Create(L3));
        p = Vector256.FusedMultiplyAdd(p, t, Vector256.Create(L2));
        p = Vector256.FusedMultiplyAdd(p, t, Vector256.Create(L1));
        p = Vector256.FusedMultiplyAdd(p, t, Vector256.Create(L0));
        return e + p;
    }

    /// <summary>Lane-wise <see cref="Exp2(float)"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Exp2(Vector256<float> y)
    {
        y = Vector256.Min(Vector256.Max(y, Vector256.Create(-126f)), Vector256.Create(126f));
        var i = Vector256.Floor(y);
        var f = y - i;
        var p = Vector256.FusedMultiplyAdd(Vector256.Create(E5), f, Vector256.Create(E4));
        p = Vector256.FusedMultiplyAdd(p, f, Vector256.Create(E3));
        p = Vector256.FusedMultiplyAdd(p, f, Vector256.Create(E2));
        p = Vector256.FusedMultiplyAdd(p, f, Vector256.Create(E1));
        p = Vector256.FusedMultiplyAdd(p, f, Vector256.Create(E0));
        return (p.AsInt32() + (Vector256.ConvertToInt32(i) << 23)).AsSingle();
    }
}
