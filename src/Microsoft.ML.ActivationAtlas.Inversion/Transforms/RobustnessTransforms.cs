namespace Microsoft.ML.ActivationAtlas.Inversion.Transforms;

/// <summary>Ready-made transformation-robustness lists.</summary>
public static class RobustnessTransforms
{
    /// <summary>
    /// The activation atlas settings: pad 16 with 0.5, jitter 4, 4, 8, 8, 8, scale 0.998^n for n in 20..39,
    /// rotation picked from range(-20, 20) + range(-10, 10) + range(-5, 5) + 5 x [0] degrees, jitter 2, crop to size.
    /// </summary>
    /// <param name="size">The icon size (the final crop).</param>
    public static IReadOnlyList<ImageTransform> Atlas(int size) =>
    [
        new PadTransform(16, 0.5f),
        new JitterTransform(4),
        new JitterTransform(4),
        new JitterTransform(8),
        new JitterTransform(8),
        new JitterTransform(8),
        new RandomScaleTransform(Enumerable.Range(20, 20).Select(n => Math.Pow(0.998, n))),
        new RandomRotateTransform(AtlasAngles()),
        new JitterTransform(2),
        new CropOrPadTransform(size, size),
    ];

    /// <summary>
    /// lucid's <c>standard_transforms</c>: pad 12 with 0.5, jitter 8, scale from 1 + (i - 5) / 50 for i in 0..10,
    /// rotation from range(-10, 11) + 5 x [0] degrees, jitter 4; then crop or pad back to <paramref name="size"/>.
    /// </summary>
    /// <param name="size">The icon size (the final crop).</param>
    public static IReadOnlyList<ImageTransform> LucidStandard(int size) =>
    [
        new PadTransform(12, 0.5f),
        new JitterTransform(8),
        new RandomScaleTransform(Enumerable.Range(0, 11).Select(i => 1 + (i - 5) / 50.0)),
        new RandomRotateTransform(Enumerable.Range(-10, 21).Select(d => (double)d).Concat(Enumerable.Repeat(0.0, 5))),
        new JitterTransform(4),
        new CropOrPadTransform(size, size),
    ];

    /// <summary>No transformation robustness.</summary>
    public static IReadOnlyList<ImageTransform> None { get; } = [];

    private static IEnumerable<double> AtlasAngles() =>
        Enumerable.Range(-20, 40).Concat(Enumerable.Range(-10, 20)).Concat(Enumerable.Range(-5, 10)).Concat(Enumerable.Repeat(0, 5)).Select(d => (double)d);
}
