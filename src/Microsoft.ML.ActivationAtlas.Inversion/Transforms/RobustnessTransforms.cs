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

    /// <summary>
    /// For vision transformers: shifts by whole patches only (<see cref="PatchJitterTransform"/>, up to
    /// <paramref name="maxPatches"/> patches each way), so the image stays on the patch grid.
    /// </summary>
    /// <param name="patch">The patch side in icon pixels: the network's patch size x icon size / network input size.</param>
    /// <param name="maxPatches">The largest shift in patches (default 1).</param>
    public static IReadOnlyList<ImageTransform> PatchAligned(int patch, int maxPatches = 1) => [new PatchJitterTransform(patch, maxPatches)];

    /// <summary>The side in icon pixels of one position of a layer grid <paramref name="gridWidth"/> wide (a ViT's patch): at least 1.</summary>
    /// <param name="size">The icon size.</param>
    /// <param name="gridWidth">The layer's width (a token layer's patch grid side).</param>
    public static int PatchPixels(int size, int gridWidth) => Math.Max(1, size / Math.Max(1, gridWidth));

    /// <summary>
    /// The default list for icons of <paramref name="size"/> px of a layer: <see cref="LucidStandard"/> for a
    /// convolutional layer, <see cref="PatchAligned"/> (one patch each way) for a vision transformer's token layer,
    /// where lucid's sub-patch jitter, scaling and rotation left the median fidelity below untrained icons' (0.93
    /// against 0.96) and whole-patch shifts reached 0.98 to 0.99 (the <c>icon-transforms</c> benchmark on the vit_tiny fixture).
    /// </summary>
    /// <param name="model">The layer model.</param>
    /// <param name="size">The icon size.</param>
    public static IReadOnlyList<ImageTransform> For(Network.ILayerGradientModel model, int size)
    {
        ArgumentNullException.ThrowIfNull(model);
        return model.Tokens is null ? LucidStandard(size) : PatchAligned(PatchPixels(size, model.LayerWidth));
    }

    /// <summary>No transformation robustness.</summary>
    public static IReadOnlyList<ImageTransform> None { get; } = [];

    private static IEnumerable<double> AtlasAngles() =>
        Enumerable.Range(-20, 40).Concat(Enumerable.Range(-10, 20)).Concat(Enumerable.Range(-5, 10)).Concat(Enumerable.Repeat(0, 5)).Select(d => (double)d);
}
