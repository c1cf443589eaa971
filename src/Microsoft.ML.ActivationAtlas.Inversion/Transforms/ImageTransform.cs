namespace Microsoft.ML.ActivationAtlas.Inversion.Transforms;

/// <summary>
/// One step of transformation robustness: a (possibly random) sparse affine map from an image of one size to an
/// image of another. A fresh map is drawn for every icon at every optimisation step.
/// </summary>
public abstract class ImageTransform
{
    private protected ImageTransform()
    {
    }

    internal abstract void Draw(Random random, int height, int width, SampledMap map);

    /// <summary>Picks one element uniformly.</summary>
    private protected static T Pick<T>(IReadOnlyList<T> values, Random random) => values[random.Next(values.Count)];
}

/// <summary>
/// The base of a transform written outside the library (lucid's composable transforms): it draws, for one icon at one
/// step, the size of its output and the input position each output pixel samples; the library samples bilinearly
/// and back-propagates through the exact transpose of that sampling, as for its own transforms. Positions are in
/// input pixels (row, column; pixel centres at whole numbers); a position outside the input reads
/// <see cref="Fill"/>. Use it in <see cref="IconRenderOptions.Transforms"/> beside the built-in steps.
/// </summary>
/// <example>
/// A mirror image, drawn at random for half of the steps:
/// <code>
/// sealed class RandomFlip : SamplingTransform
/// {
///     protected override (int Height, int Width) Sample(Random random, int height, int width, SamplePositions positions)
///     {
///         bool flip = random.Next(2) == 1;
///         var p = positions.Resize(height, width);
///         for (int y = 0; y &lt; height; y++)
///             for (int x = 0; x &lt; width; x++)
///                 (p[2 * (y * width + x)], p[2 * (y * width + x) + 1]) = (y, flip ? width - 1 - x : x);
///         return (height, width);
///     }
/// }
/// </code>
/// </example>
public abstract class SamplingTransform : ImageTransform
{
    /// <summary>Creates the transform.</summary>
    /// <param name="fill">The value read outside the input (0.5, mid-grey, by default, as lucid pads).</param>
    protected SamplingTransform(float fill = 0.5f)
    {
        Fill = fill;
    }

    /// <summary>The value read at positions outside the input.</summary>
    public float Fill { get; }

    /// <summary>
    /// Draws this step's random parameters from <paramref name="random"/> (the icon's own stream, so icons reproduce
    /// for a seed) and writes the input position of every output pixel.
    /// </summary>
    /// <param name="random">The icon's random stream.</param>
    /// <param name="height">Input height in pixels.</param>
    /// <param name="width">Input width in pixels.</param>
    /// <param name="positions">Call <see cref="SamplePositions.Resize"/> with the output size and fill what it returns.</param>
    /// <returns>The output size (the one given to <see cref="SamplePositions.Resize"/>).</returns>
    protected abstract (int Height, int Width) Sample(Random random, int height, int width, SamplePositions positions);

    internal override void Draw(Random random, int height, int width, SampledMap map)
    {
        // The positions belong to the map (one per icon and step), so one transform serves icons rendered in parallel.
        var positions = map.Positions;
        var (outH, outW) = Sample(random, height, width, positions);
        if (outH != positions.Height || outW != positions.Width)
            throw new InvalidOperationException($"{GetType().Name}.Sample returned {outH}x{outW} but filled positions for {positions.Height}x{positions.Width}.");
        map.SetPositions(height, width, outH, outW, positions.Values, Fill);
    }
}

/// <summary>The input positions a <see cref="SamplingTransform"/> samples, reused from step to step.</summary>
public sealed class SamplePositions
{
    private float[] _values = [];

    internal SamplePositions()
    {
    }

    /// <summary>The output height set by the last <see cref="Resize"/>.</summary>
    public int Height { get; private set; }

    /// <summary>The output width set by the last <see cref="Resize"/>.</summary>
    public int Width { get; private set; }

    internal ReadOnlySpan<float> Values => _values.AsSpan(0, 2 * Height * Width);

    /// <summary>
    /// Sets the output size and returns the positions to fill: (row, column) in input pixels for each output pixel
    /// in row-major order, 2 x <paramref name="height"/> x <paramref name="width"/> values.
    /// </summary>
    /// <param name="height">Output height (at least 1).</param>
    /// <param name="width">Output width (at least 1).</param>
    public Span<float> Resize(int height, int width)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(height, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(width, 1);
        if (_values.Length < 2 * height * width)
            _values = new float[2 * height * width];
        Height = height;
        Width = width;
        return _values.AsSpan(0, 2 * height * width);
    }
}

/// <summary>Pads every side by <see cref="Pixels"/> with a constant (lucid <c>pad(n, mode="constant", constant_value)</c>).</summary>
public sealed class PadTransform : ImageTransform
{
    /// <summary>Creates the step.</summary>
    /// <param name="pixels">Padding on each side.</param>
    /// <param name="value">The fill value.</param>
    public PadTransform(int pixels, float value = 0.5f)
    {
        if (pixels < 0)
            throw new ArgumentOutOfRangeException(nameof(pixels), "Padding must not be negative.");
        Pixels = pixels;
        Value = value;
    }

    /// <summary>Padding on each side.</summary>
    public int Pixels { get; }

    /// <summary>The fill value.</summary>
    public float Value { get; }

    internal override void Draw(Random random, int height, int width, SampledMap map) =>
        map.SetWindow(height, width, height + 2 * Pixels, width + 2 * Pixels, -Pixels, -Pixels, Value);
}

/// <summary>lucid <c>jitter(d)</c>: a random crop <see cref="Pixels"/> smaller in each dimension (offset uniform in 0..d).</summary>
public sealed class JitterTransform : ImageTransform
{
    /// <summary>Creates the step.</summary>
    /// <param name="pixels">How much smaller the crop is (the largest shift).</param>
    public JitterTransform(int pixels)
    {
        if (pixels < 0)
            throw new ArgumentOutOfRangeException(nameof(pixels), "Jitter must not be negative.");
        Pixels = pixels;
    }

    /// <summary>The largest shift.</summary>
    public int Pixels { get; }

    internal override void Draw(Random random, int height, int width, SampledMap map)
    {
        var (dy, dx) = DrawOffset(random);
        map.SetWindow(height, width, height - Pixels, width - Pixels, dy, dx, 0f);
    }

    /// <summary>The crop's offset for one step (row, then column), as every renderer path draws it.</summary>
    internal (int Dy, int Dx) DrawOffset(Random random)
    {
        int dy = random.Next(Pixels + 1), dx = random.Next(Pixels + 1);
        return (dy, dx);
    }
}

/// <summary>
/// A shift by whole patches: the image moves by (ky, kx) x <see cref="Patch"/> pixels, each k uniform in
/// -<see cref="MaxPatches"/>..<see cref="MaxPatches"/>, keeping its size (uncovered pixels read <see cref="Fill"/>). For
/// a vision transformer whose patches are <see cref="Patch"/> icon pixels, every shifted image still falls on the patch
/// grid, so the objective's token sees whole icon patches (the jitter of <see cref="JitterTransform"/> cuts them).
/// </summary>
public sealed class PatchJitterTransform : ImageTransform
{
    /// <summary>Creates the step.</summary>
    /// <param name="patch">The patch side in icon pixels (e.g. 8 for a ViT with 8 px patches and icons at its input size).</param>
    /// <param name="maxPatches">The largest shift in patches, in each direction (default 1).</param>
    /// <param name="fill">The value of uncovered pixels (default 0.5, mid-grey, as lucid pads).</param>
    public PatchJitterTransform(int patch, int maxPatches = 1, float fill = 0.5f)
    {
        if (patch < 1)
            throw new ArgumentOutOfRangeException(nameof(patch), patch, "The patch side must be at least 1 pixel.");
        if (maxPatches < 0)
            throw new ArgumentOutOfRangeException(nameof(maxPatches), maxPatches, "The largest shift must not be negative.");
        Patch = patch;
        MaxPatches = maxPatches;
        Fill = fill;
    }

    /// <summary>The patch side in icon pixels.</summary>
    public int Patch { get; }

    /// <summary>The largest shift in patches.</summary>
    public int MaxPatches { get; }

    /// <summary>The value of uncovered pixels.</summary>
    public float Fill { get; }

    internal override void Draw(Random random, int height, int width, SampledMap map)
    {
        int dy = (random.Next(2 * MaxPatches + 1) - MaxPatches) * Patch, dx = (random.Next(2 * MaxPatches + 1) - MaxPatches) * Patch;
        map.SetWindow(height, width, height, width, dy, dx, Fill);
    }
}

/// <summary>lucid <c>random_scale(scales)</c>: bilinear resize to floor(scale x size) with a scale picked from the list.</summary>
public sealed class RandomScaleTransform : ImageTransform
{
    private readonly double[] _scales;

    /// <summary>Creates the step.</summary>
    /// <param name="scales">The scale factors to pick from.</param>
    public RandomScaleTransform(IEnumerable<double> scales)
    {
        ArgumentNullException.ThrowIfNull(scales);
        _scales = scales.ToArray();
        if (_scales.Length == 0 || _scales.Any(s => !(s > 0) || double.IsInfinity(s)))
            throw new ArgumentException("Scales must be a non-empty list of positive numbers.", nameof(scales));
    }

    /// <summary>The scale factors.</summary>
    public IReadOnlyList<double> Scales => _scales;

    /// <summary>The scale factor for one step, as every renderer path draws it.</summary>
    internal double DrawScale(Random random) => Pick(_scales, random);

    internal override void Draw(Random random, int height, int width, SampledMap map)
    {
        double s = DrawScale(random);
        map.SetResize(height, width, (int)(s * height), (int)(s * width), halfPixel: false);
    }
}

/// <summary>lucid <c>random_rotate(angles)</c>: bilinear rotation about the centre by an angle (degrees) picked from the list.</summary>
public sealed class RandomRotateTransform : ImageTransform
{
    private readonly double[] _degrees;

    /// <summary>Creates the step.</summary>
    /// <param name="degrees">The angles, in degrees, to pick from (repeat an angle to weight it).</param>
    public RandomRotateTransform(IEnumerable<double> degrees)
    {
        ArgumentNullException.ThrowIfNull(degrees);
        _degrees = degrees.ToArray();
        if (_degrees.Length == 0 || _degrees.Any(d => !double.IsFinite(d)))
            throw new ArgumentException("Angles must be a non-empty list of finite numbers.", nameof(degrees));
    }

    /// <summary>The angles in degrees.</summary>
    public IReadOnlyList<double> Degrees => _degrees;

    internal override void Draw(Random random, int height, int width, SampledMap map) =>
        map.SetRotation(height, width, DrawAngle(random));

    /// <summary>The angle in degrees for one step, as every renderer path draws it.</summary>
    internal double DrawAngle(Random random) => Pick(_degrees, random);
}

/// <summary>TensorFlow's <c>resize_image_with_crop_or_pad</c>: centre crop or zero-pad to a fixed size.</summary>
public sealed class CropOrPadTransform : ImageTransform
{
    /// <summary>Creates the step.</summary>
    /// <param name="height">Target height.</param>
    /// <param name="width">Target width.</param>
    public CropOrPadTransform(int height, int width)
    {
        if (height < 1 || width < 1)
            throw new ArgumentOutOfRangeException(nameof(height), "The target size must be positive.");
        Height = height;
        Width = width;
    }

    /// <summary>Target height.</summary>
    public int Height { get; }

    /// <summary>Target width.</summary>
    public int Width { get; }

    internal override void Draw(Random random, int height, int width, SampledMap map) =>
        map.SetWindow(height, width, Height, Width, Offset(height, Height), Offset(width, Width), 0f);

    // Crop: start (in - out) / 2 into the input; pad: the input starts (out - in) / 2 into the output.
    internal static int Offset(int input, int output) => input >= output ? (input - output) / 2 : -((output - input) / 2);
}

/// <summary>A deterministic bilinear resize (half-pixel centres), e.g. from the icon size to the network's input size.</summary>
public sealed class ResizeTransform : ImageTransform
{
    /// <summary>Creates the step.</summary>
    /// <param name="height">Target height.</param>
    /// <param name="width">Target width.</param>
    public ResizeTransform(int height, int width)
    {
        if (height < 1 || width < 1)
            throw new ArgumentOutOfRangeException(nameof(height), "The target size must be positive.");
        Height = height;
        Width = width;
    }

    /// <summary>Target height.</summary>
    public int Height { get; }

    /// <summary>Target width.</summary>
    public int Width { get; }

    internal override void Draw(Random random, int height, int width, SampledMap map) =>
        map.SetResize(height, width, Height, Width, halfPixel: true);
}
