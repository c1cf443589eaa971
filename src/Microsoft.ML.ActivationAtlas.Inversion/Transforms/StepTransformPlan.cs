namespace Microsoft.ML.ActivationAtlas.Inversion.Transforms;

/// <summary>
/// A transformation-robustness list of lucid's shape (pad, jitters, random scale, random rotation, jitter, crop or
/// pad: <see cref="RobustnessTransforms.LucidStandard"/> and <see cref="RobustnessTransforms.Atlas"/>) as two bilinear
/// resamplings with zero borders, so that a graph can apply it to a batch from a few numbers per icon:
/// <list type="number">
/// <item>pad, jitters and scale: the padded image sampled (align-corners pixel coordinates) at
/// <c>min(A1 (X, Y, 1), clamp)</c> onto a <see cref="Canvas"/>-square canvas, rows and columns outside the window
/// [lo, hi) set to zero;</item>
/// <item>rotation, jitter and crop or pad: the canvas sampled at <c>A2 (X, Y, 1)</c> (zeros outside) onto a
/// <see cref="OutputSize"/> square, rows and columns outside the window set to zero.</item>
/// </list>
/// The draws take the same numbers from the icon's random stream, in the same order, as <see cref="TransformChain"/>
/// does for the list, so both paths see the same transforms for a seed.
/// </summary>
internal sealed class StepTransformPlan
{
    /// <summary>Floats per icon of <c>[2 stages, 2 rows (x, y), 3]</c> affine maps.</summary>
    public const int AffineSize = 12;

    /// <summary>Floats per icon of the stage-1 clamp (x, y).</summary>
    public const int ClampSize = 2;

    /// <summary>Floats per icon of the windows <c>[2 stages, (lo, hi)]</c>.</summary>
    public const int WindowSize = 4;

    private readonly JitterTransform[] _jitters;
    private readonly RandomScaleTransform _scale;
    private readonly RandomRotateTransform _rotate;
    private readonly JitterTransform _lastJitter;
    private readonly int _cropped;

    private StepTransformPlan(int size, PadTransform pad, JitterTransform[] jitters, RandomScaleTransform scale, RandomRotateTransform rotate,
        JitterTransform lastJitter, CropOrPadTransform crop)
    {
        Size = size;
        Pad = pad.Pixels;
        Fill = pad.Value;
        _jitters = jitters;
        _scale = scale;
        _rotate = rotate;
        _lastJitter = lastJitter;
        Padded = size + 2 * pad.Pixels;
        _cropped = Padded - jitters.Sum(j => j.Pixels);
        Canvas = scale.Scales.Max(s => (int)(s * _cropped));
        OutputSize = crop.Height;
    }

    /// <summary>The icon side.</summary>
    public int Size { get; }

    /// <summary>Padding on each side.</summary>
    public int Pad { get; }

    /// <summary>The padding value.</summary>
    public float Fill { get; }

    /// <summary>Side of the padded image (the first sampling's input).</summary>
    public int Padded { get; }

    /// <summary>Side of the first sampling's output (the largest scaled image).</summary>
    public int Canvas { get; }

    /// <summary>Side of the second sampling's output (the crop).</summary>
    public int OutputSize { get; }

    /// <summary>Every setting of the plan, for caching the graphs built from it.</summary>
    public string Describe() => string.Create(System.Globalization.CultureInfo.InvariantCulture,
        $"{Size}|{Pad}|{Fill:R}|{string.Join(",", _jitters.Select(j => j.Pixels))}|{string.Join(",", _scale.Scales.Select(v => v.ToString("R", System.Globalization.CultureInfo.InvariantCulture)))}|"
        + $"{string.Join(",", _rotate.Degrees.Select(v => v.ToString("R", System.Globalization.CultureInfo.InvariantCulture)))}|{_lastJitter.Pixels}|{OutputSize}");

    /// <summary>The plan of a transform list, or null when the list is not of this shape (it then runs as a <see cref="TransformChain"/>).</summary>
    public static StepTransformPlan? TryCreate(IReadOnlyList<ImageTransform> transforms, int size)
    {
        ArgumentNullException.ThrowIfNull(transforms);
        int n = transforms.Count;
        if (n < 5 || transforms[0] is not PadTransform pad || transforms[n - 1] is not CropOrPadTransform crop || crop.Height != crop.Width
            || transforms[n - 2] is not JitterTransform last || transforms[n - 3] is not RandomRotateTransform rotate
            || transforms[n - 4] is not RandomScaleTransform scale)
            return null;
        var jitters = new JitterTransform[n - 5];
        for (int i = 1; i < n - 4; i++)
        {
            if (transforms[i] is not JitterTransform j)
                return null;
            jitters[i - 1] = j;
        }
        int cropped = size + 2 * pad.Pixels - jitters.Sum(j => j.Pixels);
        // Every drawn size must be a real image (the chain itself would stop with an error otherwise).
        if (cropped < 2 || scale.Scales.Any(s => (int)(s * cropped) - last.Pixels < 1))
            return null;
        return new StepTransformPlan(size, pad, jitters, scale, rotate, last, crop);
    }

    /// <summary>
    /// Draws one icon's transforms from its stream and writes the two affine maps (output pixel (X, Y, 1) to input
    /// pixel (x, y), row x first), the first stage's clamp and both windows.
    /// </summary>
    public void Draw(Random random, Span<float> affine, Span<float> clamp, Span<float> window)
    {
        int oy = 0, ox = 0;
        foreach (var j in _jitters)
        {
            var (dy, dx) = j.DrawOffset(random);
            oy += dy;
            ox += dx;
        }
        double s = _scale.DrawScale(random);
        double degrees = _rotate.DrawAngle(random);
        var (jy, jx) = _lastJitter.DrawOffset(random);

        // 1. pad + jitters (integer windows) + TensorFlow 1's corner-aligned resize of the cropped image to `scaled`.
        int h0 = _cropped, scaled = (int)(s * h0);
        double r = (double)h0 / scaled;
        Set(affine[..6], r, 0, ox, 0, r, oy);
        clamp[0] = ox + h0 - 1;
        clamp[1] = oy + h0 - 1;
        window[0] = 0;
        window[1] = scaled;

        // 2. rotation about the scaled image's centre (zeros outside), the last jitter, then crop or pad to the output:
        // output (X, Y) reads the rotated image at (X + off + jx, Y + off + jy).
        int kept = scaled - _lastJitter.Pixels, off = CropOrPadTransform.Offset(kept, OutputSize);
        double a = degrees * Math.PI / 180.0, cos = Math.Cos(a), sin = Math.Sin(a), centre = (scaled - 1) / 2.0;
        double ux = off + jx - centre, uy = off + jy - centre;
        Set(affine[6..], cos, -sin, cos * ux - sin * uy + centre, sin, cos, sin * ux + cos * uy + centre);
        window[2] = -off;
        window[3] = kept - off;
    }

    private static void Set(Span<float> m, double a, double b, double c, double d, double e, double f)
    {
        m[0] = (float)a; m[1] = (float)b; m[2] = (float)c;
        m[3] = (float)d; m[4] = (float)e; m[5] = (float)f;
    }
}
