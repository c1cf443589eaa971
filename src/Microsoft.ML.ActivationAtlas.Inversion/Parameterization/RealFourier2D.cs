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
/// Sizes of icons are small (tens to a few hundred pixels), so the transform is evaluated as dense real matrix products
/// with precomputed cosine/sine matrices (<see cref="DenseProduct"/>): exact, simple to transpose, and cheaper than the
/// network. Each pass first folds the inputs that meet the same cosine (rows or columns k and N - k: their sum) and
/// the same sine up to sign (their difference), so the products cover half the rows and half the outputs (the
/// one level of an FFT that symmetry gives); the real and imaginary parts are interleaved and the spectrum rows padded
/// to whole SIMD vectors.
/// </remarks>
internal sealed class RealFourier2D
{
    private readonly int _fftWidth;
    // Spectrum row length padded to whole vectors.
    private readonly int _stride;
    // Column pass, C, S = cos, sin(2 pi ky y / H) / H (symmetric; C even and S odd in y and in ky about H/2):
    // _even [E x E] = C[y, k] for y, k <= H/2; _odd [E x D] = S[y, k] for y <= H/2, 1 <= k <= (H-1)/2.
    private readonly int _evenRows, _oddRows;
    private readonly float[] _even;
    private readonly float[] _odd;
    // Row pass (c2r over x), Cw, Sw = a_k cos, sin(2 pi k x / Wf) (even and odd in x about Wf / 2), for the first
    // half of the columns, x < Wf / 2 + 1: _rowCos [stride x X] = Cw[k, x], _rowSin = -Sw[k, x] (padding rows zero), and
    // the transposes [X x stride].
    private readonly int _halfWidth, _halfStride;
    private readonly float[] _rowCos, _rowSin, _rowCosT, _rowSinT;

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

        _evenRows = h / 2 + 1;
        _oddRows = (h - 1) / 2;
        _even = new float[_evenRows * _evenRows];
        _odd = new float[_evenRows * _oddRows];
        for (int y = 0; y < _evenRows; y++)
        {
            for (int k = 0; k < _evenRows; k++)
                _even[y * _evenRows + k] = (float)(Math.Cos(2 * Math.PI * ((long)k * y % h) / h) / h);
            for (int k = 1; k <= _oddRows; k++)
                _odd[y * _oddRows + k - 1] = (float)(Math.Sin(2 * Math.PI * ((long)k * y % h) / h) / h);
        }

        _halfWidth = Math.Min(width, _fftWidth / 2 + 1);
        _halfStride = (_halfWidth + v - 1) / v * v;
        int nx = _halfWidth;
        _rowCos = new float[_stride * nx];
        _rowSin = new float[_stride * nx];
        _rowCosT = new float[nx * _stride];
        _rowSinT = new float[nx * _stride];
        for (int k = 0; k < fw; k++)
        {
            bool edge = k == 0 || (_fftWidth % 2 == 0 && k == _fftWidth / 2);
            double a = (edge ? 1.0 : 2.0) / _fftWidth;
            for (int x = 0; x < nx; x++)
            {
                double t = 2 * Math.PI * ((long)k * x % _fftWidth) / _fftWidth;
                float c = (float)(a * Math.Cos(t));
                float s = edge ? 0f : (float)(a * Math.Sin(t));
                _rowCos[k * nx + x] = c;
                _rowSin[k * nx + x] = -s;
                _rowCosT[x * _stride + k] = c;
                _rowSinT[x * _stride + k] = -s;
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
    public int ScratchSize => 2 * Height * _stride + 2 * _stride * (3 * _evenRows + _oddRows) + 2 * Height * _halfStride;

    /// <summary>image = irfft2d(re + i im). <paramref name="image"/> is overwritten.</summary>
    public void Inverse(ReadOnlySpan<float> re, ReadOnlySpan<float> im, Span<float> image, Span<float> scratch)
    {
        int h = Height, w = Width, fw = SpectrumWidth, st = _stride;
        Split(scratch, out var z, out var even, out var odd, out var evenOut, out var oddOut);
        // Z = (C + iS)(Xr + iXi), rows Zr(y) = C Xr - S Xi and Zi(y) = S Xr + C Xi, from the even and odd parts in ky.
        Fold(re, im, fw, even, odd);
        ColumnPass(even, odd, evenOut, oddOut);
        for (int y = 0; y < _evenRows; y++)
        {
            ReadOnlySpan<float> ar = evenOut.Slice(2 * y * st, st), ai = evenOut.Slice((2 * y + 1) * st, st);
            ReadOnlySpan<float> br = oddOut.Slice(2 * y * st, st), bi = oddOut.Slice((2 * y + 1) * st, st);
            TensorPrimitives.Subtract(ar, bi, z.Slice(2 * y * st, st));
            TensorPrimitives.Add(ai, br, z.Slice((2 * y + 1) * st, st));
            int m = h - y;
            if (y > 0 && m > y)
            {
                // C[h - y, k] = C[y, k], S[h - y, k] = -S[y, k].
                TensorPrimitives.Add(ar, bi, z.Slice(2 * m * st, st));
                TensorPrimitives.Subtract(ai, br, z.Slice((2 * m + 1) * st, st));
            }
        }
        // x[y, :] = sum_k Zr[y,k] Cw[k,:] - Zi[y,k] Sw[k,:], for the first half of the columns P = Zr Cw and Q = -Zi Sw;
        // column Wf - x is P - Q (Cw even, Sw odd about Wf / 2).
        int nx = _halfWidth, sx = _halfStride, wf = _fftWidth;
        Span<float> p = scratch.Slice(ScratchSize - 2 * h * sx, h * sx), q = scratch.Slice(ScratchSize - h * sx, h * sx);
        DenseProduct.Multiply(z, 2 * st, _rowCos, nx, p, sx, h, st, nx);
        DenseProduct.Multiply(z[st..], 2 * st, _rowSin, nx, q, sx, h, st, nx);
        for (int y = 0; y < h; y++)
        {
            ReadOnlySpan<float> py = p.Slice(y * sx, nx), qy = q.Slice(y * sx, nx);
            Span<float> row = image.Slice(y * w, w);
            TensorPrimitives.Add(py, qy, row[..nx]);
            for (int x = Math.Max(1, wf - w + 1); 2 * x < wf; x++)
                row[wf - x] = py[x] - qy[x];
        }
    }

    /// <summary>The adjoint: (re, im) += irfft2d^T(image). Accumulates into the spectrum gradients.</summary>
    public void InverseAdjoint(ReadOnlySpan<float> image, Span<float> re, Span<float> im, Span<float> scratch)
    {
        int h = Height, w = Width, fw = SpectrumWidth, st = _stride;
        Split(scratch, out var z, out var even, out var odd, out var evenOut, out var oddOut);
        // Zr[y,k] = sum_x g[y,x] Cw[k,x];  Zi[y,k] = -sum_x g[y,x] Sw[k,x]: rows Zr(y), Zi(y) interleaved; the columns x
        // and Wf - x folded first (their sum meets Cw, their difference Sw).
        int nx = _halfWidth, sx = _halfStride, wf = _fftWidth;
        Span<float> ge = scratch.Slice(ScratchSize - 2 * h * sx, h * sx), go = scratch.Slice(ScratchSize - h * sx, h * sx);
        for (int y = 0; y < h; y++)
        {
            ReadOnlySpan<float> row = image.Slice(y * w, w);
            Span<float> ey = ge.Slice(y * sx, nx), oy = go.Slice(y * sx, nx);
            row[..nx].CopyTo(ey);
            row[..nx].CopyTo(oy);
            for (int x = Math.Max(1, wf - w + 1); 2 * x < wf; x++)
            {
                ey[x] += row[wf - x];
                oy[x] -= row[wf - x];
            }
        }
        DenseProduct.Multiply(ge, sx, _rowCosT, st, z, 2 * st, h, nx, st);
        DenseProduct.Multiply(go, sx, _rowSinT, st, z[st..], 2 * st, h, nx, st);
        // Xr += C^T Zr + S^T Zi ; Xi += -S^T Zr + C^T Zi   (C, S symmetric), from the even and odd parts in y.
        Fold(z, st, even, odd);
        ColumnPass(even, odd, evenOut, oddOut);
        for (int k = 0; k < _evenRows; k++)
        {
            ReadOnlySpan<float> ar = evenOut.Slice(2 * k * st, fw), ai = evenOut.Slice((2 * k + 1) * st, fw);
            ReadOnlySpan<float> br = oddOut.Slice(2 * k * st, fw), bi = oddOut.Slice((2 * k + 1) * st, fw);
            Span<float> xr = re.Slice(k * fw, fw), xi = im.Slice(k * fw, fw);
            TensorPrimitives.Add(xr, ar, xr);
            TensorPrimitives.Add(xr, bi, xr);
            TensorPrimitives.Add(xi, ai, xi);
            TensorPrimitives.Subtract(xi, br, xi);
            int m = h - k;
            if (k > 0 && m > k)
            {
                xr = re.Slice(m * fw, fw);
                xi = im.Slice(m * fw, fw);
                TensorPrimitives.Add(xr, ar, xr);
                TensorPrimitives.Subtract(xr, bi, xr);
                TensorPrimitives.Add(xi, ai, xi);
                TensorPrimitives.Add(xi, br, xi);
            }
        }
    }

    private void Split(Span<float> scratch, out Span<float> z, out Span<float> even, out Span<float> odd, out Span<float> evenOut, out Span<float> oddOut)
    {
        int st = _stride, e = 2 * st * _evenRows, o = 2 * st * _oddRows;
        z = scratch[..(2 * Height * st)];
        var rest = scratch[(2 * Height * st)..];
        even = rest[..e];
        odd = rest.Slice(e, o);
        evenOut = rest.Slice(e + o, e);
        oddOut = rest.Slice(2 * e + o, e);
    }

    // The even and odd parts over rows k and H - k of a pair of planes (row k: re row, then im row, each padded to the
    // stride with zeros): even[k] = p[k] + p[H - k] (p[k] alone for k = 0 and k = H / 2), odd[k - 1] = p[k] - p[H - k].
    private void Fold(ReadOnlySpan<float> re, ReadOnlySpan<float> im, int length, Span<float> even, Span<float> odd)
    {
        int h = Height, st = _stride;
        even.Clear();
        odd.Clear();
        for (int k = 0; k < _evenRows; k++)
        {
            int m = h - k;
            for (int part = 0; part < 2; part++)
            {
                ReadOnlySpan<float> p = part == 0 ? re : im;
                Span<float> e = even.Slice((2 * k + part) * st, length);
                if (k == 0 || m == k)
                {
                    p.Slice(k * length, length).CopyTo(e);
                    continue;
                }
                TensorPrimitives.Add(p.Slice(k * length, length), p.Slice(m * length, length), e);
                TensorPrimitives.Subtract(p.Slice(k * length, length), p.Slice(m * length, length), odd.Slice((2 * (k - 1) + part) * st, length));
            }
        }
    }

    // The same for the interleaved rows Zr(y), Zi(y) of z (stride st).
    private void Fold(ReadOnlySpan<float> z, int st, Span<float> even, Span<float> odd)
    {
        int h = Height;
        for (int y = 0; y < _evenRows; y++)
        {
            int m = h - y;
            for (int part = 0; part < 2; part++)
            {
                ReadOnlySpan<float> row = z.Slice((2 * y + part) * st, st);
                Span<float> e = even.Slice((2 * y + part) * st, st);
                if (y == 0 || m == y)
                {
                    row.CopyTo(e);
                    continue;
                }
                ReadOnlySpan<float> mirror = z.Slice((2 * m + part) * st, st);
                TensorPrimitives.Add(row, mirror, e);
                TensorPrimitives.Subtract(row, mirror, odd.Slice((2 * (y - 1) + part) * st, st));
            }
        }
    }

    // evenOut [E x 2 stride] = _even even, oddOut = _odd odd: the cosine sums of the even parts, the sine sums of the odd.
    private void ColumnPass(ReadOnlySpan<float> even, ReadOnlySpan<float> odd, Span<float> evenOut, Span<float> oddOut)
    {
        int st = _stride;
        DenseProduct.Multiply(_even, _evenRows, even, 2 * st, evenOut, 2 * st, _evenRows, _evenRows, 2 * st);
        DenseProduct.Multiply(_odd, _oddRows, odd, 2 * st, oddOut, 2 * st, _evenRows, _oddRows, 2 * st);
    }

    /// <summary>
    /// The inverse transform as two dense matrices, for graphs that compute it as matrix products: with the real and
    /// imaginary planes stacked as rows, <c>[Zr; Zi] = Column [Xr; Xi]</c> (<c>Column</c> is <c>[2 H, 2 H]</c>), and
    /// with <c>Zr</c> and <c>Zi</c> side by side, <c>image = [Zr, Zi] Row</c> (<c>Row</c> is <c>[2 SpectrumWidth, W]</c>).
    /// Both are row-major and hold the same float coefficients as the tables <see cref="Inverse"/> uses.
    /// </summary>
    public (float[] Column, float[] Row) DenseMatrices()
    {
        int h = Height, w = Width, fw = SpectrumWidth;
        var column = new float[4 * h * h];
        for (int y = 0; y < h; y++)
            for (int k = 0; k < h; k++)
            {
                double t = 2 * Math.PI * ((long)k * y % h) / h;
                float c = (float)(Math.Cos(t) / h), s = (float)(Math.Sin(t) / h);
                column[y * 2 * h + k] = c;              // Zr += C Xr
                column[y * 2 * h + h + k] = -s;         // Zr -= S Xi
                column[(h + y) * 2 * h + k] = s;        // Zi += S Xr
                column[(h + y) * 2 * h + h + k] = c;    // Zi += C Xi
            }
        var row = new float[2 * fw * w];
        for (int k = 0; k < fw; k++)
        {
            bool edge = k == 0 || (_fftWidth % 2 == 0 && k == _fftWidth / 2);
            double a = (edge ? 1.0 : 2.0) / _fftWidth;
            for (int x = 0; x < w; x++)
            {
                double t = 2 * Math.PI * ((long)k * x % _fftWidth) / _fftWidth;
                row[k * w + x] = (float)(a * Math.Cos(t));
                row[(fw + k) * w + x] = edge ? 0f : -(float)(a * Math.Sin(t));
            }
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
