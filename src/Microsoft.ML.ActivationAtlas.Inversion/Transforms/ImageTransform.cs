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
        int dy = random.Next(Pixels + 1), dx = random.Next(Pixels + 1);
        map.SetWindow(height, width, height - Pixels, width - Pixels, dy, dx, 0f);
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

    internal override void Draw(Random random, int height, int width, SampledMap map)
    {
        double s = Pick(_scales, random);
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
        map.SetRotation(height, width, Pick(_degrees, random));
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
    private static int Offset(int input, int output) => input >= output ? (input - output) / 2 : -((output - input) / 2);
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
