using System.Numerics.Tensors;

namespace Microsoft.ML.ActivationAtlas.Inversion.Parameterization;

/// <summary>
/// MACO (Fel et al., NeurIPS 2023, "Unlocking feature visualization for deeper networks with magnitude constrained
/// optimization"): the image is the real inverse FFT of a half spectrum whose magnitude is fixed, normally the mean
/// amplitude spectrum of natural images (<see cref="MeanAmplitude"/>), and only the phase is optimised. The parameters
/// are the phases, <c>[3, spectrumHeight, spectrumWidth]</c>, initialised uniformly in [-pi, pi). Every image it makes has
/// the given amplitude spectrum (exactly so for the columns 0 &lt; kx &lt; width/2; the real transform makes the first
/// and, for an even width, the last column conjugate-symmetric), which keeps icons of deep layers close to natural images.
/// </summary>
public sealed class MacoImageParameterization : IImageParameterization
{
    private const int Channels = 3;
    private readonly RealFourier2D _fft;
    private readonly float[] _magnitude;

    /// <summary>Creates the parameterisation with a fixed magnitude.</summary>
    /// <param name="height">Image height in pixels.</param>
    /// <param name="width">Image width in pixels.</param>
    /// <param name="magnitude">The amplitude of every half-spectrum coefficient, <c>[3, height, spectrumWidth]</c> (see <see cref="MeanAmplitude"/>).</param>
    public MacoImageParameterization(int height, int width, ReadOnlySpan<float> magnitude)
    {
        if (height < 2 || width < 2)
            throw new ArgumentOutOfRangeException(nameof(height), $"Icon size must be at least 2x2 pixels; got {height}x{width}.");
        Height = height;
        Width = width;
        _fft = new RealFourier2D(height, width);
        if (magnitude.Length != Channels * _fft.SpectrumSize)
            throw new ArgumentException($"The MACO magnitude has {magnitude.Length} values; {height}x{width} icons need 3 x {height} x {_fft.SpectrumWidth} = {Channels * _fft.SpectrumSize} (compute it with MeanAmplitude at the icon size).", nameof(magnitude));
        for (int i = 0; i < magnitude.Length; i++)
            if (!float.IsFinite(magnitude[i]) || magnitude[i] < 0)
                throw new ArgumentException($"The MACO magnitude has an invalid value ({magnitude[i]}) at {i}; amplitudes are finite and >= 0.", nameof(magnitude));
        _magnitude = magnitude.ToArray();
    }

    /// <inheritdoc/>
    public int Height { get; }

    /// <inheritdoc/>
    public int Width { get; }

    /// <summary>Columns of the half spectrum.</summary>
    public int SpectrumWidth => _fft.SpectrumWidth;

    /// <summary>The fixed amplitude spectrum, <c>[3, height, spectrumWidth]</c>.</summary>
    public ReadOnlySpan<float> Magnitude => _magnitude;

    /// <inheritdoc/>
    public int ParameterCount => Channels * _fft.SpectrumSize;

    /// <inheritdoc/>
    public int ScratchSize => _fft.ScratchSize + 2 * _fft.SpectrumSize;

    /// <summary>Values of a magnitude for icons of this size: 3 x height x (width/2 + 1), or width/2 + 2 for an odd width.</summary>
    public static int MagnitudeLength(int height, int width) => Channels * new RealFourier2D(height, width).SpectrumSize;

    /// <summary>
    /// The mean amplitude spectrum of images, taken in the space the basis produces: each pixel in [0, 1] is clamped
    /// to [0.01, 0.99] and mapped back through the sigmoid (and through lucid's colour decorrelation when
    /// <paramref name="decorrelateColors"/>), so that a MACO icon has the spectrum of these images where it matters.
    /// </summary>
    /// <param name="images">Planar RGB images in [0, 1], <c>[count, 3, size, size]</c>, already at the icon size.</param>
    /// <param name="count">Number of images.</param>
    /// <param name="size">Icon side in pixels.</param>
    /// <param name="decorrelateColors">Whether the icons use lucid's colour decorrelation.</param>
    public static float[] MeanAmplitude(ReadOnlySpan<float> images, int count, int size, bool decorrelateColors = true)
    {
        if (count < 1)
            throw new ArgumentOutOfRangeException(nameof(count), "At least one image is needed for the MACO magnitude.");
        int plane = size * size, n = 3 * plane;
        if (images.Length != count * n)
            throw new ArgumentException($"Expected {count} images of 3x{size}x{size} ({count * n} values); got {images.Length}.", nameof(images));
        var fft = new RealFourier2D(size, size);
        int spectrum = fft.SpectrumSize;
        var sum = new double[3 * spectrum];
        var raw = new float[n];
        var basis = new float[n];
        var re = new float[spectrum];
        var im = new float[spectrum];
        Span<float> inverse = stackalloc float[9];
        if (decorrelateColors)
            Invert3x3(ColorDecorrelation.Matrix, inverse);
        for (int i = 0; i < count; i++)
        {
            var image = images.Slice(i * n, n);
            for (int p = 0; p < n; p++)
            {
                float v = Math.Clamp(image[p], 0.01f, 0.99f);
                raw[p] = MathF.Log(v / (1 - v));
            }
            if (decorrelateColors)
                for (int p = 0; p < plane; p++)
                    for (int c = 0; c < 3; c++)
                        basis[c * plane + p] = inverse[3 * c] * raw[p] + inverse[3 * c + 1] * raw[plane + p] + inverse[3 * c + 2] * raw[2 * plane + p];
            else
                raw.CopyTo(basis, 0);
            for (int c = 0; c < 3; c++)
            {
                fft.Forward(basis.AsSpan(c * plane, plane), re, im);
                for (int k = 0; k < spectrum; k++)
                    sum[c * spectrum + k] += Math.Sqrt((double)re[k] * re[k] + (double)im[k] * im[k]);
            }
        }
        return sum.Select(v => (float)(v / count)).ToArray();
    }

    /// <summary>The amplitude of every half-spectrum coefficient of one channel-planar image <c>[3, height, width]</c>.</summary>
    public float[] Amplitude(ReadOnlySpan<float> image)
    {
        int plane = Height * Width, spectrum = _fft.SpectrumSize;
        var result = new float[3 * spectrum];
        var re = new float[spectrum];
        var im = new float[spectrum];
        for (int c = 0; c < 3; c++)
        {
            _fft.Forward(image.Slice(c * plane, plane), re, im);
            for (int k = 0; k < spectrum; k++)
                result[c * spectrum + k] = MathF.Sqrt(re[k] * re[k] + im[k] * im[k]);
        }
        return result;
    }

    /// <inheritdoc/>
    public void Initialize(Span<float> parameters, Random random)
    {
        ArgumentNullException.ThrowIfNull(random);
        for (int i = 0; i < ParameterCount; i++)
            parameters[i] = (float)((2 * random.NextDouble() - 1) * Math.PI);
    }

    /// <inheritdoc/>
    public void Forward(ReadOnlySpan<float> parameters, Span<float> image, Span<float> scratch)
    {
        int n = _fft.SpectrumSize, plane = Height * Width;
        Span<float> re = scratch[..n], im = scratch.Slice(n, n), fftScratch = scratch[(2 * n)..];
        for (int c = 0; c < Channels; c++)
        {
            ReadOnlySpan<float> phase = parameters.Slice(c * n, n), m = _magnitude.AsSpan(c * n, n);
            TensorPrimitives.Cos(phase, re);
            TensorPrimitives.Multiply(re, m, re);
            TensorPrimitives.Sin(phase, im);
            TensorPrimitives.Multiply(im, m, im);
            _fft.Inverse(re, im, image.Slice(c * plane, plane), fftScratch);
        }
    }

    /// <inheritdoc/>
    public void Adjoint(ReadOnlySpan<float> parameters, ReadOnlySpan<float> imageGradient, Span<float> parameterGradient, Span<float> scratch)
    {
        int n = _fft.SpectrumSize, plane = Height * Width;
        Span<float> gr = scratch[..n], gi = scratch.Slice(n, n), fftScratch = scratch[(2 * n)..];
        for (int c = 0; c < Channels; c++)
        {
            gr.Clear();
            gi.Clear();
            _fft.InverseAdjoint(imageGradient.Slice(c * plane, plane), gr, gi, fftScratch);
            ReadOnlySpan<float> phase = parameters.Slice(c * n, n), m = _magnitude.AsSpan(c * n, n);
            Span<float> g = parameterGradient.Slice(c * n, n);
            // re = m cos(phi), im = m sin(phi): d/dphi = m (-sin(phi) gr + cos(phi) gi)
            for (int k = 0; k < n; k++)
            {
                var (s, co) = MathF.SinCos(phase[k]);
                g[k] += m[k] * (co * gi[k] - s * gr[k]);
            }
        }
    }

    private static void Invert3x3(ReadOnlySpan<float> m, Span<float> inv)
    {
        double a = m[0], b = m[1], c = m[2], d = m[3], e = m[4], f = m[5], g = m[6], h = m[7], i = m[8];
        double det = a * (e * i - f * h) - b * (d * i - f * g) + c * (d * h - e * g);
        inv[0] = (float)((e * i - f * h) / det);
        inv[1] = (float)((c * h - b * i) / det);
        inv[2] = (float)((b * f - c * e) / det);
        inv[3] = (float)((f * g - d * i) / det);
        inv[4] = (float)((a * i - c * g) / det);
        inv[5] = (float)((c * d - a * f) / det);
        inv[6] = (float)((d * h - e * g) / det);
        inv[7] = (float)((b * g - a * h) / det);
        inv[8] = (float)((a * e - b * d) / det);
    }
}
