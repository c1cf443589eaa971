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
/// products with precomputed cosine/sine matrices (<see cref="DenseProduct"/>): exact, simple to transpose, and far
/// cheaper than the network. The real and imaginary parts are interleaved so that one product does each pass: the
/// column pass (complex, over y) maps the rows <c>[Xr(ky); Xi(ky)]</c> to <c>[Zr(y); Zi(y)]</c>, the row pass (c2r,
/// over x) maps <c>[Zr(y), Zi(y)]</c> to the image row. Rows of the spectrum are padded to whole SIMD vectors.
/// </remarks>
internal sealed class RealFourier2D
{
    private readonly int _fftWidth;
    // Spectrum row length padded to whole vectors.
    private readonly int _stride;
    // Column pass [2H x 2H]: row 2y = (C[y,ky], -S[y,ky]) over ky, row 2y+1 = (S[y,ky], C[y,ky]); C, S = cos, sin(2 pi ky y / H) / H.
    private readonly float[] _columns;
    // Its adjoint [2H x 2H]: row 2ky = (C[ky,y], S[ky,y]) over y, row 2ky+1 = (-S[ky,y], C[ky,y]).
    private readonly float[] _columnsAdjoint;
    // Row pass [2 stride x W]: row k = a_k cos(2 pi k x / Wf), row stride + k = -a_k sin(...), padding rows zero.
    private readonly float[] _rows;
    // Its adjoint [W x 2 stride], the transpose.
    private readonly float[] _rowsAdjoint;

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
        int h = height, fw = SpectrumWidth, v = System.Numerics.Vector<float>.Count;
        _stride = (fw + v - 1) / v * v;

        _columns = new float[4 * h * h];
        _columnsAdjoint = new float[4 * h * h];
        for (int k = 0; k < h; k++)
            for (int y = 0; y < h; y++)
            {
                double t = 2 * Math.PI * ((long)k * y % h) / h;
                float c = (float)(Math.Cos(t) / h), s = (float)(Math.Sin(t) / h);
                // C and S are symmetric: C[y, k] = C[k, y].
                int r = 2 * y * 2 * h + 2 * k;
                _columns[r] = c;
                _columns[r + 1] = -s;
                _columns[r + 2 * h] = s;
                _columns[r + 2 * h + 1] = c;
                int q = 2 * k * 2 * h + 2 * y;
                _columnsAdjoint[q] = c;
                _columnsAdjoint[q + 1] = s;
                _columnsAdjoint[q + 2 * h] = -s;
                _columnsAdjoint[q + 2 * h + 1] = c;
            }

        _rows = new float[2 * _stride * width];
        _rowsAdjoint = new float[width * 2 * _stride];
        for (int k = 0; k < fw; k++)
        {
            bool edge = k == 0 || (_fftWidth % 2 == 0 && k == _fftWidth / 2);
            double a = (edge ? 1.0 : 2.0) / _fftWidth;
            for (int x = 0; x < width; x++)
            {
                double t = 2 * Math.PI * ((long)k * x % _fftWidth) / _fftWidth;
                float c = (float)(a * Math.Cos(t));
                float s = edge ? 0f : (float)(a * Math.Sin(t));
                _rows[k * width + x] = c;
                _rows[(_stride + k) * width + x] = -s;
                _rowsAdjoint[x * 2 * _stride + k] = c;
                _rowsAdjoint[x * 2 * _stride + _stride + k] = -s;
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
    public int ScratchSize => 4 * Height * _stride;

    /// <summary>image = irfft2d(re + i im). <paramref name="image"/> is overwritten.</summary>
    public void Inverse(ReadOnlySpan<float> re, ReadOnlySpan<float> im, Span<float> image, Span<float> scratch)
    {
        int h = Height, w = Width, fw = SpectrumWidth, st = _stride;
        Span<float> x = scratch[..(2 * h * st)];
        Span<float> z = scratch.Slice(2 * h * st, 2 * h * st);
        // X: rows Xr(ky), Xi(ky) interleaved, the padding zero (it meets zero rows of the row pass, and must not be NaN).
        for (int k = 0; k < h; k++)
        {
            re.Slice(k * fw, fw).CopyTo(x.Slice(2 * k * st, fw));
            im.Slice(k * fw, fw).CopyTo(x.Slice((2 * k + 1) * st, fw));
            x.Slice(2 * k * st + fw, st - fw).Clear();
            x.Slice((2 * k + 1) * st + fw, st - fw).Clear();
        }
        // Z = (C + iS)(Xr + iXi): rows Zr(y) = C Xr - S Xi, Zi(y) = S Xr + C Xi.
        DenseProduct.Multiply(_columns, 2 * h, x, st, z, st, 2 * h, 2 * h, st);
        // x[y, :] = sum_k Zr[y,k] Cw[k,:] - Zi[y,k] Sw[k,:]: row y of Z as one row of 2 stride values.
        DenseProduct.Multiply(z, 2 * st, _rows, w, image, w, h, 2 * st, w);
    }

    /// <summary>The adjoint: (re, im) += irfft2d^T(image). Accumulates into the spectrum gradients.</summary>
    public void InverseAdjoint(ReadOnlySpan<float> image, Span<float> re, Span<float> im, Span<float> scratch)
    {
        int h = Height, w = Width, fw = SpectrumWidth, st = _stride;
        Span<float> x = scratch[..(2 * h * st)];
        Span<float> z = scratch.Slice(2 * h * st, 2 * h * st);
        // Zr[y,k] = sum_x g[y,x] Cw[k,x];  Zi[y,k] = -sum_x g[y,x] Sw[k,x]: rows Zr(y), Zi(y) interleaved.
        DenseProduct.Multiply(image, w, _rowsAdjoint, 2 * st, z, 2 * st, h, w, 2 * st);
        // Xr += C^T Zr + S^T Zi ; Xi += -S^T Zr + C^T Zi   (C, S symmetric).
        DenseProduct.Multiply(_columnsAdjoint, 2 * h, z, st, x, st, 2 * h, 2 * h, st);
        for (int k = 0; k < h; k++)
        {
            Span<float> xr = re.Slice(k * fw, fw), xi = im.Slice(k * fw, fw);
            TensorPrimitives.Add(xr, x.Slice(2 * k * st, fw), xr);
            TensorPrimitives.Add(xi, x.Slice((2 * k + 1) * st, fw), xi);
        }
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
