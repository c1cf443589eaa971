using System.Numerics.Tensors;

namespace Microsoft.ML.ActivationAtlas.Inversion;

/// <summary>
/// Icon quality beyond fidelity. Plausibility: the cosine between an icon's activation and its nearest real activation
/// (an icon the network could have seen in real images scores near 1; an adversarial pattern that only matches the
/// target direction scores lower). Agreement: the cosine between what a later layer sees in the icon and in the cell's
/// member images.
/// </summary>
public static class IconQualityMetrics
{
    /// <summary>The largest cosine between <paramref name="activation"/> and any row of <paramref name="rows"/>.</summary>
    /// <param name="activation">The icon's activation (<see cref="RenderedIcon.Activation"/>).</param>
    /// <param name="rows">Real activations, row-major <c>[n, activation.Length]</c> (e.g. the atlas's rows).</param>
    public static double Plausibility(ReadOnlySpan<float> activation, ReadOnlySpan<float> rows)
    {
        int c = activation.Length;
        if (c == 0)
            throw new ArgumentException("The activation is empty.", nameof(activation));
        if (rows.Length == 0 || rows.Length % c != 0)
            throw new ArgumentException($"The real activations hold {rows.Length} values, not a whole, non-zero number of rows of {c} channels.", nameof(rows));
        float norm = TensorPrimitives.Norm(activation);
        if (norm == 0)
            return 0;
        double best = -1;
        for (int r = 0; r < rows.Length / c; r++)
        {
            var row = rows.Slice(r * c, c);
            float rowNorm = TensorPrimitives.Norm(row);
            if (rowNorm > 0)
                best = Math.Max(best, TensorPrimitives.Dot(activation, row) / ((double)norm * rowNorm));
        }
        return best;
    }

    /// <summary>Plausibility of every icon against the same real rows, in parallel.</summary>
    /// <param name="icons">The icons.</param>
    /// <param name="rows">Real activations, row-major <c>[n, channels]</c>.</param>
    public static double[] Plausibility(IReadOnlyList<RenderedIcon> icons, ReadOnlyMemory<float> rows)
    {
        ArgumentNullException.ThrowIfNull(icons);
        var result = new double[icons.Count];
        Parallel.For(0, icons.Count, i => result[i] = Plausibility(icons[i].Activation, rows.Span));
        return result;
    }
}
