using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Microsoft.ML.ActivationAtlas.Inversion.Parameterization;

/// <summary>
/// The product of two small dense row-major matrices, <c>C = A B</c>, register-blocked over the columns of C (four SIMD
/// vectors of a row of C held in registers while a row of A is broadcast over the rows of B). For the transforms
/// of an icon (a few hundred rows), where the matrices stay in cache.
/// </summary>
internal static class DenseProduct
{
    /// <summary>
    /// <c>c[i, j] = sum_p a[i * lda + p] * b[p * ldb + j]</c> for i &lt; <paramref name="m"/>, p &lt; <paramref name="k"/>,
    /// j &lt; <paramref name="n"/>, written to <c>c[i * ldc + j]</c> (overwritten).
    /// </summary>
    public static void Multiply(ReadOnlySpan<float> a, int lda, ReadOnlySpan<float> b, int ldb, Span<float> c, int ldc, int m, int k, int n)
    {
        if (m <= 0 || n <= 0)
            return;
        if (k <= 0)
        {
            for (int i = 0; i < m; i++)
                c.Slice(i * ldc, n).Clear();
            return;
        }
        if (a.Length < (m - 1) * lda + k || b.Length < (k - 1) * ldb + n || c.Length < (m - 1) * ldc + n)
            throw new ArgumentException($"The buffers are too small for a {m}x{k} by {k}x{n} product.");
        ref float ra = ref MemoryMarshal.GetReference(a);
        ref float rb = ref MemoryMarshal.GetReference(b);
        ref float rc = ref MemoryMarshal.GetReference(c);
        int v = Vector<float>.Count;
        for (int i = 0; i < m; i++)
        {
            ref float ai = ref Unsafe.Add(ref ra, i * lda);
            ref float ci = ref Unsafe.Add(ref rc, i * ldc);
            int j = 0;
            for (; j + 4 * v <= n; j += 4 * v)
                Block4(ref ai, ref rb, ldb, k, j, ref ci);
            for (; j + v <= n; j += v)
                Block1(ref ai, ref rb, ldb, k, j, ref ci);
            if (j < n)
            {
                if (n >= v)
                {
                    // The last, partial vector: recompute the n - v .. n columns (the overlap gets the same values).
                    Block1(ref ai, ref rb, ldb, k, n - v, ref ci);
                }
                else
                {
                    for (; j < n; j++)
                    {
                        float s = 0f;
                        for (int p = 0; p < k; p++)
                            s += Unsafe.Add(ref ai, p) * Unsafe.Add(ref rb, p * ldb + j);
                        Unsafe.Add(ref ci, j) = s;
                    }
                }
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Block4(ref float ai, ref float rb, int ldb, int k, int j, ref float ci)
    {
        int v = Vector<float>.Count;
        Vector<float> c0 = Vector<float>.Zero, c1 = c0, c2 = c0, c3 = c0;
        for (int p = 0; p < k; p++)
        {
            var s = new Vector<float>(Unsafe.Add(ref ai, p));
            ref float bp = ref Unsafe.Add(ref rb, p * ldb + j);
            c0 = Vector.MultiplyAddEstimate(s, Vector.LoadUnsafe(ref bp), c0);
            c1 = Vector.MultiplyAddEstimate(s, Vector.LoadUnsafe(ref bp, (nuint)v), c1);
            c2 = Vector.MultiplyAddEstimate(s, Vector.LoadUnsafe(ref bp, (nuint)(2 * v)), c2);
            c3 = Vector.MultiplyAddEstimate(s, Vector.LoadUnsafe(ref bp, (nuint)(3 * v)), c3);
        }
        ref float cj = ref Unsafe.Add(ref ci, j);
        c0.StoreUnsafe(ref cj);
        c1.StoreUnsafe(ref cj, (nuint)v);
        c2.StoreUnsafe(ref cj, (nuint)(2 * v));
        c3.StoreUnsafe(ref cj, (nuint)(3 * v));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Block1(ref float ai, ref float rb, int ldb, int k, int j, ref float ci)
    {
        Vector<float> c0 = Vector<float>.Zero, c1 = c0;
        int p = 0;
        // Two accumulators over alternate rows of B, added at the end, so consecutive multiply-adds do not wait on each other.
        for (; p + 1 < k; p += 2)
        {
            c0 = Vector.MultiplyAddEstimate(new Vector<float>(Unsafe.Add(ref ai, p)), Vector.LoadUnsafe(ref Unsafe.Add(ref rb, p * ldb + j)), c0);
            c1 = Vector.MultiplyAddEstimate(new Vector<float>(Unsafe.Add(ref ai, p + 1)), Vector.LoadUnsafe(ref Unsafe.Add(ref rb, (p + 1) * ldb + j)), c1);
        }
        if (p < k)
            c0 = Vector.MultiplyAddEstimate(new Vector<float>(Unsafe.Add(ref ai, p)), Vector.LoadUnsafe(ref Unsafe.Add(ref rb, p * ldb + j)), c0);
        (c0 + c1).StoreUnsafe(ref Unsafe.Add(ref ci, j));
    }
}
