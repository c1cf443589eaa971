using System.Numerics.Tensors;

namespace Microsoft.ML.ActivationAtlas.Inversion.Parameterization;

/// <summary>
/// lucid's <c>fft_image</c>: the image is the real inverse FFT of a half spectrum whose coefficients are scaled by
/// <c>sqrt(h w) / max(f, 1/max(h, w))^decay</c>, divided by 4. The parameters are the real and imaginary parts of
/// the unscaled spectrum, <c>[2, 3, spectrumHeight, spectrumWidth]</c>, initialised from N(0, sd^2) with sd = 0.01.
/// Scaling by 1/frequency makes the optimiser see a whitened (decorrelated) pixel space, which is what yields
/// natural-looking feature visualisations.
/// </summary>
public sealed class FourierImageParameterization : IImageParameterization
{
    private const int Channels = 3;
    private readonly RealFourier2D _fft;
    private readonly float[] _scale;
    private readonly float _initStd;

    /// <summary>Creates the parameterisation for images of the given size.</summary>
    /// <param name="height">Image height in pixels.</param>
    /// <param name="width">Image width in pixels.</param>
    /// <param name="decayPower">Exponent of the 1/frequency scaling (lucid: 1).</param>
    /// <param name="initialStd">Standard deviation of the initial spectrum (lucid: 0.01).</param>
    public FourierImageParameterization(int height, int width, double decayPower = 1.0, double initialStd = 0.01)
    {
        if (height < 2 || width < 2)
            throw new ArgumentOutOfRangeException(nameof(height), $"Icon size must be at least 2x2 pixels; got {height}x{width}.");
        if (!(initialStd > 0) || double.IsInfinity(initialStd))
            throw new ArgumentOutOfRangeException(nameof(initialStd), "The initial spectrum's standard deviation must be positive.");
        Height = height;
        Width = width;
        _initStd = (float)initialStd;
        _fft = new RealFourier2D(height, width);
        float[] freqs = _fft.Frequencies();
        _scale = new float[freqs.Length];
        double floor = 1.0 / Math.Max(height, width);
        double root = Math.Sqrt((double)height * width);
        for (int i = 0; i < freqs.Length; i++)
            _scale[i] = (float)(root / Math.Pow(Math.Max(freqs[i], floor), decayPower) / 4.0);
    }

    /// <inheritdoc/>
    public int Height { get; }

    /// <inheritdoc/>
    public int Width { get; }

    /// <summary>The real inverse 2-D DFT of one channel.</summary>
    internal RealFourier2D Transform => _fft;

    /// <summary>Complex coefficients per channel.</summary>
    public int SpectrumSize => _fft.SpectrumSize;

    /// <inheritdoc/>
    public int ParameterCount => 2 * Channels * _fft.SpectrumSize;

    /// <inheritdoc/>
    public int ScratchSize => _fft.ScratchSize + 2 * _fft.SpectrumSize;

    /// <summary>The per-coefficient scale (including the /4), row-major over the half spectrum.</summary>
    public ReadOnlySpan<float> SpectrumScale => _scale;

    /// <inheritdoc/>
    public void Initialize(Span<float> parameters, Random random)
    {
        ArgumentNullException.ThrowIfNull(random);
        Gaussian.Fill(parameters[..ParameterCount], random, _initStd);
    }

    /// <inheritdoc/>
    public void Forward(ReadOnlySpan<float> parameters, Span<float> image, Span<float> scratch)
    {
        int n = _fft.SpectrumSize, plane = Height * Width;
        Span<float> re = scratch[..n], im = scratch.Slice(n, n), fftScratch = scratch[(2 * n)..];
        for (int c = 0; c < Channels; c++)
        {
            TensorPrimitives.Multiply(parameters.Slice(c * n, n), _scale, re);
            TensorPrimitives.Multiply(parameters.Slice((Channels + c) * n, n), _scale, im);
            _fft.Inverse(re, im, image.Slice(c * plane, plane), fftScratch);
        }
    }

    /// <inheritdoc/>
    public void Adjoint(ReadOnlySpan<float> parameters, ReadOnlySpan<float> imageGradient, Span<float> parameterGradient, Span<float> scratch)
    {
        int n = _fft.SpectrumSize, plane = Height * Width;
        Span<float> re = scratch[..n], im = scratch.Slice(n, n), fftScratch = scratch[(2 * n)..];
        for (int c = 0; c < Channels; c++)
        {
            re.Clear();
            im.Clear();
            _fft.InverseAdjoint(imageGradient.Slice(c * plane, plane), re, im, fftScratch);
            Span<float> gr = parameterGradient.Slice(c * n, n), gi = parameterGradient.Slice((Channels + c) * n, n);
            TensorPrimitives.MultiplyAdd(re, _scale, gr, gr);
            TensorPrimitives.MultiplyAdd(im, _scale, gi, gi);
        }
    }
}
