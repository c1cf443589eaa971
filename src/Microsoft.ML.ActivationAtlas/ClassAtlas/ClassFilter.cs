namespace Microsoft.ML.ActivationAtlas.ClassAtlas;

/// <summary>Selects the rows of a class activation atlas from per-row attributions (row-major, rows x classes).</summary>
internal static class ClassFilter
{
    /// <summary>
    /// Sorted, deduplicated indices of the rows kept: by rank (the class has the row's largest attribution; ties go to
    /// the lower class index) and/or by magnitude (the <paramref name="magnitudeCount"/> rows with the largest
    /// attribution to the class; ties go to the lower row).
    /// </summary>
    public static int[] SelectRows(ReadOnlySpan<float> attributions, int classes, int classIndex, ClassFilterKind kind, int magnitudeCount)
    {
        if (classes <= 0 || attributions.Length % classes != 0)
            throw new ArgumentException($"Attributions hold {attributions.Length} values, not a multiple of {classes} classes.", nameof(attributions));
        if ((uint)classIndex >= (uint)classes)
            throw new ArgumentOutOfRangeException(nameof(classIndex), $"Class {classIndex} is outside the {classes} classes of the attribution.");
        if ((kind & ClassFilterKind.Both) == 0)
            throw new ArgumentOutOfRangeException(nameof(kind), "Choose Rank, Magnitude or Both.");
        int n = attributions.Length / classes;
        var keep = new bool[n];
        if (kind.HasFlag(ClassFilterKind.Rank))
        {
            for (int i = 0; i < n; i++)
                keep[i] |= System.Numerics.Tensors.TensorPrimitives.IndexOfMax(attributions.Slice(i * classes, classes)) == classIndex;
        }
        if (kind.HasFlag(ClassFilterKind.Magnitude) && magnitudeCount > 0)
        {
            var order = new int[n];
            var values = new float[n];
            for (int i = 0; i < n; i++)
            {
                order[i] = i;
                values[i] = -attributions[i * classes + classIndex];
            }
            // Stable: equal values keep row order.
            Array.Sort(values, order, Comparer<float>.Create((a, b) => a.CompareTo(b)));
            var top = order.Take(Math.Min(magnitudeCount, n)).ToArray();
            // Array.Sort is not stable; settle ties in favour of lower rows.
            float cut = top.Length > 0 ? -values[top.Length - 1] : float.PositiveInfinity;
            int strictly = 0;
            for (int i = 0; i < n; i++)
                if (attributions[i * classes + classIndex] > cut)
                {
                    keep[i] = true;
                    strictly++;
                }
            for (int i = 0, left = top.Length - strictly; i < n && left > 0; i++)
                if (attributions[i * classes + classIndex] == cut)
                {
                    keep[i] = true;
                    left--;
                }
        }
        var result = new List<int>();
        for (int i = 0; i < n; i++)
            if (keep[i])
                result.Add(i);
        return result.ToArray();
    }
}
