using System.Numerics.Tensors;

namespace Microsoft.ML.ActivationAtlas.Inversion.Parameterization;

/// <summary>
/// The real inverse 2-D discrete Fourier transform of one channel (numpy/TensorFlow <c>irfft2d</c> semantics) as an
/// exact linear map, with its adjoint. The half spectrum has <see cref="SpectrumHeight"/> x <see cref="SpectrumWidth"/>
/// complex coefficients (stored as separate real and imaginary planes); the output has <see cref="Height"/> x
/// <see cref="Width"/> pixels. For an odd width the spectrum has <c>width/2 + 2</c> columns and the transform is taken
/// at width + 1 and cropped, as lucid does.
/// </summary>
/// <remarks>
/// Sizes of icons are small (tens to a few hundred pixels), so the transform is evaluated as two dense real matrix
/// products with precomputed cosine/sine tables: exact, simple to transpose, and far cheaper than the network.
/// </remarks>
internal sealed class RealFourier2D
{
    private readonly int _fftWidth;
    // Column pass (over y, complex, size H): cos/sin of 2 pi ky y / H, scaled by 1/H. Symmetric [H x H].
    private readonly float[] _cosH;
    private readonly float[] _sinH;
    // Row pass (c2r over x): a_k cos(2 pi k x / Wf) and a_k sin(...), [fw x W] and transposes [W x fw].
    private readonly float[] _cosW;
    private readonly float[] _sinW;
    private readonly float[] _cosWT;
    private readonly float[] _sinWT;

    public RealFourier2D(int height, int width)
    {
        if (height < 1 || width < 1)
            throw new ArgumentOutOfRangeException(nameof(height), "Image sizes must be positive.");
        Height = height;
        Width = width;
        SpectrumHeight = height;
        SpectrumWidth = width % 2 == 1 ? width / 2 + 2 : width / 2 + 1;
        _fftWidth = 2 * (SpectrumWidth - 1);
        if (width == 1)
        {
            SpectrumWidth = 1;
            _fftWidth = 1;
        }

        _cosH = new float[height * height];
        _sinH = new float[height * height];
        for (int k = 0; k < height; k++)
            for (int y = 0; y < height; y++)
            {
                double t = 2 * Math.PI * ((long)k * y % height) / height;
                _cosH[k * height + y] = (float)(Math.Cos(t) / height);
                _sinH[k * height + y] = (float)(Math.Sin(t) / height);
            }

        int fw = SpectrumWidth;
        _cosW = new float[fw * width];
        _sinW = new float[fw * width];
        _cosWT = new float[width * fw];
        _sinWT = new float[width * fw];
        for (int k = 0; k < fw; k++)
        {
            bool edge = k == 0 || (_fftWidth % 2 == 0 && k == _fftWidth / 2);
            double a = (edge ? 1.0 : 2.0) / _fftWidth;
            for (int x = 0; x < width; x++)
            {
                double t = 2 * Math.PI * ((long)k * x % _fftWidth) / _fftWidth;
                float c = (float)(a * Math.Cos(t));
                float s = edge ? 0f : (float)(a * Math.Sin(t));
                _cosW[k * width + x] = c;
                _sinW[k * width + x] = s;
                _cosWT[x * fw + k] = c;
                _sinWT[x * fw + k] = s;
            }
        }
    }

    /// <summary>Output image height.</summary>
    public int Height { get; }

    /// <summary>Output image width.</summary>
    public int Width { get; }

    /// <summary>Rows of the half spectrum (= height).</summary>
    public int SpectrumHeight { get; }

    /// <summary>Columns of the half spectrum.</summary>
    public int SpectrumWidth { get; }

    /// <summary>Complex coefficients per channel.</summary>
    public int SpectrumSize => SpectrumHeight * SpectrumWidth;

    /// <summary>Scratch floats needed by <see cref="Inverse"/> and <see cref="InverseAdjoint"/>.</summary>
    public int ScratchSize => 2 * Height * SpectrumWidth;

    /// <summary>image = irfft2d(re + i im). <paramref name="image"/> is overwritten.</summary>
    public void Inverse(ReadOnlySpan<float> re, ReadOnlySpan<float> im, Span<float> image, Span<float> scratch)
    {
        int h = Height, w = Width, fw = SpectrumWidth;
        Span<float> zr = scratch[..(h * fw)];
        Span<float> zi = scratch.Slice(h * fw, h * fw);
        zr.Clear();
        zi.Clear();
        // Z = (C + iS)(Xr + iXi): Zr = C Xr - S Xi, Zi = S Xr + C Xi   (C, S symmetric, rows indexed by y).
        for (int y = 0; y < h; y++)
        {
            Span<float> zrRow = zr.Slice(y * fw, fw);
            Span<float> ziRow = zi.Slice(y * fw, fw);
            for (int k = 0; k < h; k++)
            {
                float c = _cosH[y * h + k], s = _sinH[y * h + k];
                ReadOnlySpan<float> xr = re.Slice(k * fw, fw), xi = im.Slice(k * fw, fw);
                TensorPrimitives.MultiplyAdd(xr, c, zrRow, zrRow);
                TensorPrimitives.MultiplyAdd(xi, -s, zrRow, zrRow);
                TensorPrimitives.MultiplyAdd(xr, s, ziRow, ziRow);
                TensorPrimitives.MultiplyAdd(xi, c, ziRow, ziRow);
            }
        }
        // x[y, :] = sum_k Zr[y,k] Cw[k,:] - Zi[y,k] Sw[k,:]
        image[..(h * w)].Clear();
        for (int y = 0; y < h; y++)
        {
            Span<float> row = image.Slice(y * w, w);
            for (int k = 0; k < fw; k++)
            {
                TensorPrimitives.MultiplyAdd(_cosW.AsSpan(k * w, w), zr[y * fw + k], row, row);
                TensorPrimitives.MultiplyAdd(_sinW.AsSpan(k * w, w), -zi[y * fw + k], row, row);
            }
        }
    }

    /// <summary>The adjoint: (re, im) += irfft2d^T(image). Accumulates into the spectrum gradients.</summary>
    public void InverseAdjoint(ReadOnlySpan<float> image, Span<float> re, Span<float> im, Span<float> scratch)
    {
        int h = Height, w = Width, fw = SpectrumWidth;
        Span<float> zr = scratch[..(h * fw)];
        Span<float> zi = scratch.Slice(h * fw, h * fw);
        // Zr[y,k] = sum_x g[y,x] Cw[k,x];  Zi[y,k] = -sum_x g[y,x] Sw[k,x]
        for (int y = 0; y < h; y++)
        {
            Span<float> zrRow = zr.Slice(y * fw, fw);
            Span<float> ziRow = zi.Slice(y * fw, fw);
            zrRow.Clear();
            ziRow.Clear();
            ReadOnlySpan<float> g = image.Slice(y * w, w);
            for (int x = 0; x < w; x++)
            {
                TensorPrimitives.MultiplyAdd(_cosWT.AsSpan(x * fw, fw), g[x], zrRow, zrRow);
                TensorPrimitives.MultiplyAdd(_sinWT.AsSpan(x * fw, fw), -g[x], ziRow, ziRow);
            }
        }
        // Xr += C^T Zr + S^T Zi ; Xi += -S^T Zr + C^T Zi   (C, S symmetric)
        for (int k = 0; k < h; k++)
        {
            Span<float> xr = re.Slice(k * fw, fw), xi = im.Slice(k * fw, fw);
            for (int y = 0; y < h; y++)
            {
                float c = _cosH[k * h + y], s = _sinH[k * h + y];
                ReadOnlySpan<float> zrRow = zr.Slice(y * fw, fw), ziRow = zi.Slice(y * fw, fw);
                TensorPrimitives.MultiplyAdd(zrRow, c, xr, xr);
                TensorPrimitives.MultiplyAdd(ziRow, s, xr, xr);
                TensorPrimitives.MultiplyAdd(zrRow, -s, xi, xi);
                TensorPrimitives.MultiplyAdd(ziRow, c, xi, xi);
            }
        }
    }

    /// <summary>
    /// The inverse transform as two dense matrices, for graphs that compute it as matrix products: with the real and
    /// imaginary planes stacked as rows, <c>[Zr; Zi] = Column [Xr; Xi]</c> (<c>Column</c> is <c>[2 H, 2 H]</c>), and
    /// with <c>Zr</c> and <c>Zi</c> side by side, <c>image = [Zr, Zi] Row</c> (<c>Row</c> is <c>[2 SpectrumWidth, W]</c>).
    /// Both are row-major and hold exactly the tables <see cref="Inverse"/> uses.
    /// </summary>
    public (float[] Column, float[] Row) DenseMatrices()
    {
        int h = Height, w = Width, fw = SpectrumWidth;
        var column = new float[4 * h * h];
        for (int y = 0; y < h; y++)
            for (int k = 0; k < h; k++)
            {
                float c = _cosH[y * h + k], s = _sinH[y * h + k];
                column[y * 2 * h + k] = c;              // Zr += C Xr
                column[y * 2 * h + h + k] = -s;         // Zr -= S Xi
                column[(h + y) * 2 * h + k] = s;        // Zi += S Xr
                column[(h + y) * 2 * h + h + k] = c;    // Zi += C Xi
            }
        var row = new float[2 * fw * w];
        for (int k = 0; k < fw; k++)
            for (int x = 0; x < w; x++)
            {
                row[k * w + x] = _cosW[k * w + x];
                row[(fw + k) * w + x] = -_sinW[k * w + x];
            }
        return (column, row);
    }

    /// <summary>
    /// The forward transform (numpy <c>rfft2</c> on the transform grid, an odd width zero-padded by one column): the
    /// half spectrum whose <see cref="Inverse"/> is the image. Direct sums; meant for setting up, not for every step.
    /// </summary>
    public void Forward(ReadOnlySpan<float> image, Span<float> re, Span<float> im)
    {
        int h = Height, w = Width, fw = SpectrumWidth;
        var rr = new double[h * fw];
        var ri = new double[h * fw];
        for (int y = 0; y < h; y++)
            for (int k = 0; k < fw; k++)
            {
                double sr = 0, si = 0;
                for (int x = 0; x < w; x++)
                {
                    double t = 2 * Math.PI * ((long)k * x % _fftWidth) / _fftWidth;
                    sr += image[y * w + x] * Math.Cos(t);
                    si -= image[y * w + x] * Math.Sin(t);
                }
                rr[y * fw + k] = sr;
                ri[y * fw + k] = si;
            }
        for (int ky = 0; ky < h; ky++)
            for (int k = 0; k < fw; k++)
            {
                double sr = 0, si = 0;
                for (int y = 0; y < h; y++)
                {
                    double t = 2 * Math.PI * ((long)ky * y % h) / h, c = Math.Cos(t), s = Math.Sin(t);
                    sr += c * rr[y * fw + k] + s * ri[y * fw + k];
                    si += c * ri[y * fw + k] - s * rr[y * fw + k];
                }
                re[ky * fw + k] = (float)sr;
                im[ky * fw + k] = (float)si;
            }
    }

    /// <summary>lucid's <c>rfft2d_freqs</c>: the radial frequency of every half-spectrum coefficient.</summary>
    public float[] Frequencies()
    {
        var f = new float[SpectrumSize];
        for (int ky = 0; ky < SpectrumHeight; ky++)
        {
            double fy = FftFreq(ky, Height);
            for (int kx = 0; kx < SpectrumWidth; kx++)
            {
                double fx = FftFreq(kx, Width);
                f[ky * SpectrumWidth + kx] = (float)Math.Sqrt(fx * fx + fy * fy);
            }
        }
        return f;
    }

    // numpy.fft.fftfreq(n)[k]
    private static double FftFreq(int k, int n) => (k < (n + 1) / 2 ? k : k - n) / (double)n;
}
