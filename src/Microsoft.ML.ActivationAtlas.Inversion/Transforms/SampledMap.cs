namespace Microsoft.ML.ActivationAtlas.Inversion.Transforms;

/// <summary>
/// A sparse affine map between planar multi-channel images, shared by all channels:
/// <c>out[c, p] = bias[p] + sum_k weight[p, k] * in[c, index[p, k]]</c> with four taps per output pixel (bilinear).
/// Pads, crops, jitters, rescales and rotations are all of this form, so one forward and one exact adjoint
/// (the transpose: scatter the output gradient back along the same taps) serve them all. Buffers are reused
/// across steps, so drawing a new random map allocates nothing once warm.
/// </summary>
internal sealed class SampledMap
{
    public const int Taps = 4;
    private int[] _index = [];
    private float[] _weight = [];
    private float[] _bias = [];
    private MapKind _kind;
    // Window: the source offset and fill. Resize and rotation: the offset of the output in the full map's output (a crop absorbed).
    private int _offsetY, _offsetX;
    private float _fill;
    // Resize: two taps and two weights per output row and per output column.
    private int[] _rowTap = [], _colTap = [];
    private float[] _rowWeight = [], _colWeight = [];
    // Rotation: the centre and cos/sin times the offset from it per row and per column.
    private double _centerY, _centerX;
    private double[] _rowCos = [], _rowSin = [], _colCos = [], _colSin = [];

    // How the map is stored: tap tables (any map), or computed on the fly from a few numbers (the built-in steps).
    private enum MapKind
    {
        Taps,
        Window,
        Resize,
        Rotation,
    }

    /// <summary>
    /// Whether windows, resizes and rotations are stored as per-pixel tap tables like any sampled map (the reference
    /// form) rather than computed on the fly from their few parameters; both give the same values.
    /// </summary>
    public bool TapTables { get; set; }

    public int InHeight { get; private set; }
    public int InWidth { get; private set; }
    public int OutHeight { get; private set; }
    public int OutWidth { get; private set; }
    public int OutPixels => OutHeight * OutWidth;
    public int InPixels => InHeight * InWidth;

    /// <summary>The buffer a <see cref="SamplingTransform"/> writes its positions into.</summary>
    public SamplePositions Positions { get; } = new();

    private void SetShape(MapKind kind, int inH, int inW, int outH, int outW)
    {
        if (inH < 1 || inW < 1 || outH < 1 || outW < 1)
            throw new InvalidOperationException($"A transform produced an empty image ({inH}x{inW} -> {outH}x{outW}); the icon is too small for the transforms.");
        _kind = kind;
        InHeight = inH; InWidth = inW; OutHeight = outH; OutWidth = outW;
        _offsetY = _offsetX = 0;
    }

    private static void Grow<T>(ref T[] buffer, int n)
    {
        if (buffer.Length < n)
            buffer = new T[n];
    }

    private void Reset(int inH, int inW, int outH, int outW)
    {
        SetShape(MapKind.Taps, inH, inW, outH, outW);
        int n = outH * outW;
        if (_bias.Length < n)
        {
            _index = new int[n * Taps];
            _weight = new float[n * Taps];
            _bias = new float[n];
        }
        Array.Clear(_weight, 0, n * Taps);
        Array.Clear(_index, 0, n * Taps);
        Array.Clear(_bias, 0, n);
    }

    /// <summary>out[y, x] = in[y + offsetY, x + offsetX] where inside, else <paramref name="fill"/> (pad / crop / jitter).</summary>
    public void SetWindow(int inH, int inW, int outH, int outW, int offsetY, int offsetX, float fill)
    {
        if (!TapTables)
        {
            SetShape(MapKind.Window, inH, inW, outH, outW);
            _offsetY = offsetY;
            _offsetX = offsetX;
            _fill = fill;
            return;
        }
        Reset(inH, inW, outH, outW);
        for (int y = 0; y < outH; y++)
            for (int x = 0; x < outW; x++)
            {
                int p = y * outW + x, sy = y + offsetY, sx = x + offsetX;
                if (sy >= 0 && sy < inH && sx >= 0 && sx < inW)
                {
                    _index[p * Taps] = sy * inW + sx;
                    _weight[p * Taps] = 1f;
                }
                else
                {
                    _bias[p] = fill;
                }
            }
    }

    /// <summary>
    /// Whether <paramref name="next"/>, drawn on this map's output, is a crop that this map can absorb exactly (a window
    /// entirely inside this map's output, after a window, a resize or a rotation); if so it is absorbed.
    /// </summary>
    public bool TryAbsorbCrop(SampledMap next)
    {
        if (next._kind != MapKind.Window || _kind == MapKind.Taps || next.InHeight != OutHeight || next.InWidth != OutWidth
            || next._offsetY < 0 || next._offsetX < 0 || next._offsetY + next.OutHeight > OutHeight || next._offsetX + next.OutWidth > OutWidth)
            return false;
        _offsetY += next._offsetY;
        _offsetX += next._offsetX;
        OutHeight = next.OutHeight;
        OutWidth = next.OutWidth;
        return true;
    }

    /// <summary>Bilinear resize; <paramref name="halfPixel"/> selects half-pixel centres (else TensorFlow 1's legacy corner mapping). Edges clamp.</summary>
    public void SetResize(int inH, int inW, int outH, int outW, bool halfPixel)
    {
        if (!TapTables)
        {
            SetShape(MapKind.Resize, inH, inW, outH, outW);
            Grow(ref _rowTap, 2 * outH);
            Grow(ref _rowWeight, 2 * outH);
            Grow(ref _colTap, 2 * outW);
            Grow(ref _colWeight, 2 * outW);
            ResizeAxis(inH, outH, halfPixel, _rowTap, _rowWeight);
            ResizeAxis(inW, outW, halfPixel, _colTap, _colWeight);
            return;
        }
        Reset(inH, inW, outH, outW);
        double ry = (double)inH / outH, rx = (double)inW / outW;
        for (int y = 0; y < outH; y++)
        {
            double sy = halfPixel ? (y + 0.5) * ry - 0.5 : y * ry;
            sy = Math.Clamp(sy, 0, inH - 1);
            int y0 = (int)Math.Floor(sy), y1 = Math.Min(y0 + 1, inH - 1);
            float fy = (float)(sy - y0);
            for (int x = 0; x < outW; x++)
            {
                double sx = halfPixel ? (x + 0.5) * rx - 0.5 : x * rx;
                sx = Math.Clamp(sx, 0, inW - 1);
                int x0 = (int)Math.Floor(sx), x1 = Math.Min(x0 + 1, inW - 1);
                float fx = (float)(sx - x0);
                SetTaps(y * outW + x, y0 * inW + x0, y0 * inW + x1, y1 * inW + x0, y1 * inW + x1,
                    (1 - fy) * (1 - fx), (1 - fy) * fx, fy * (1 - fx), fy * fx);
            }
        }
    }

    // One axis of a resize, as the tap tables compute it: the two taps (the second clamped to the edge) and their
    // weights (1 - f, f).
    private static void ResizeAxis(int n, int outN, bool halfPixel, int[] tap, float[] weight)
    {
        double r = (double)n / outN;
        for (int i = 0; i < outN; i++)
        {
            double s = halfPixel ? (i + 0.5) * r - 0.5 : i * r;
            s = Math.Clamp(s, 0, n - 1);
            int i0 = (int)Math.Floor(s);
            float f = (float)(s - i0);
            tap[2 * i] = i0;
            tap[2 * i + 1] = Math.Min(i0 + 1, n - 1);
            weight[2 * i] = 1 - f;
            weight[2 * i + 1] = f;
        }
    }

    /// <summary>Bilinear rotation by <paramref name="degrees"/> about the image centre, same size, zeros outside.</summary>
    public void SetRotation(int h, int w, double degrees)
    {
        double a = degrees * Math.PI / 180.0, cos = Math.Cos(a), sin = Math.Sin(a);
        double cy = (h - 1) / 2.0, cx = (w - 1) / 2.0;
        if (!TapTables)
        {
            SetShape(MapKind.Rotation, h, w, h, w);
            _centerY = cy;
            _centerX = cx;
            // Output pixel (x, y) samples (cos dx - sin dy + cx, sin dx + cos dy + cy); the products per row and column.
            Grow(ref _rowCos, h);
            Grow(ref _rowSin, h);
            Grow(ref _colCos, w);
            Grow(ref _colSin, w);
            for (int y = 0; y < h; y++)
            {
                _rowCos[y] = cos * (y - cy);
                _rowSin[y] = sin * (y - cy);
            }
            for (int x = 0; x < w; x++)
            {
                _colCos[x] = cos * (x - cx);
                _colSin[x] = sin * (x - cx);
            }
            return;
        }
        Reset(h, w, h, w);
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
            {
                // Output pixel (x, y) samples the input at the inverse rotation of its offset from the centre.
                double dx = x - cx, dy = y - cy;
                double sx = cos * dx - sin * dy + cx, sy = sin * dx + cos * dy + cy;
                int x0 = (int)Math.Floor(sx), y0 = (int)Math.Floor(sy);
                float fx = (float)(sx - x0), fy = (float)(sy - y0);
                int p = y * w + x;
                int slot = 0;
                AddTap(p, ref slot, y0, x0, (1 - fy) * (1 - fx));
                AddTap(p, ref slot, y0, x0 + 1, (1 - fy) * fx);
                AddTap(p, ref slot, y0 + 1, x0, fy * (1 - fx));
                AddTap(p, ref slot, y0 + 1, x0 + 1, fy * fx);
            }
    }

    /// <summary>
    /// Bilinear sampling at given input positions: output pixel p (row-major) reads the input at
    /// (<paramref name="positions"/>[2p], <paramref name="positions"/>[2p + 1]) = (y, x), in input pixels; the taps that
    /// fall outside the input read <paramref name="fill"/> in proportion to their weight.
    /// </summary>
    public void SetPositions(int inH, int inW, int outH, int outW, ReadOnlySpan<float> positions, float fill)
    {
        Reset(inH, inW, outH, outW);
        for (int p = 0; p < outH * outW; p++)
        {
            float sy = positions[2 * p], sx = positions[2 * p + 1];
            if (!float.IsFinite(sy) || !float.IsFinite(sx))
                throw new InvalidOperationException($"A sampling transform gave the non-finite position ({sy}, {sx}) for output pixel {p}.");
            int y0 = (int)MathF.Floor(sy), x0 = (int)MathF.Floor(sx);
            float fy = sy - y0, fx = sx - x0;
            int slot = 0;
            float outside = 0f;
            outside += AddTapOrMiss(p, ref slot, y0, x0, (1 - fy) * (1 - fx));
            outside += AddTapOrMiss(p, ref slot, y0, x0 + 1, (1 - fy) * fx);
            outside += AddTapOrMiss(p, ref slot, y0 + 1, x0, fy * (1 - fx));
            outside += AddTapOrMiss(p, ref slot, y0 + 1, x0 + 1, fy * fx);
            _bias[p] = outside * fill;
        }
    }

    private float AddTapOrMiss(int p, ref int slot, int y, int x, float weight)
    {
        if (weight == 0f)
            return 0f;
        if (y < 0 || y >= InHeight || x < 0 || x >= InWidth)
            return weight;
        AddTap(p, ref slot, y, x, weight);
        return 0f;
    }

    private void AddTap(int p, ref int slot, int y, int x, float weight)
    {
        if (y < 0 || y >= InHeight || x < 0 || x >= InWidth || weight == 0f)
            return;
        _index[p * Taps + slot] = y * InWidth + x;
        _weight[p * Taps + slot] = weight;
        slot++;
    }

    private void SetTaps(int p, int i0, int i1, int i2, int i3, float w0, float w1, float w2, float w3)
    {
        int o = p * Taps;
        _index[o] = i0; _index[o + 1] = i1; _index[o + 2] = i2; _index[o + 3] = i3;
        _weight[o] = w0; _weight[o + 1] = w1; _weight[o + 2] = w2; _weight[o + 3] = w3;
    }

    /// <summary>Applies the map to <paramref name="channels"/> planes.</summary>
    public void Forward(ReadOnlySpan<float> input, Span<float> output, int channels)
    {
        switch (_kind)
        {
            case MapKind.Window:
                WindowForward(input, output, channels);
                break;
            case MapKind.Resize:
                ResizeForward(input, output, channels);
                break;
            case MapKind.Rotation:
                RotationForward(input, output, channels);
                break;
            default:
                TapsForward(input, output, channels);
                break;
        }
    }

    /// <summary>The transpose of the linear part: overwrites <paramref name="inputGradient"/> with M^T <paramref name="outputGradient"/>.</summary>
    public void Adjoint(ReadOnlySpan<float> outputGradient, Span<float> inputGradient, int channels)
    {
        inputGradient[..(channels * InPixels)].Clear();
        switch (_kind)
        {
            case MapKind.Window:
                WindowAdjoint(outputGradient, inputGradient, channels);
                break;
            case MapKind.Resize:
                ResizeAdjoint(outputGradient, inputGradient, channels);
                break;
            case MapKind.Rotation:
                RotationAdjoint(outputGradient, inputGradient, channels);
                break;
            default:
                TapsAdjoint(outputGradient, inputGradient, channels);
                break;
        }
    }

    // The columns [start, end) of a window's output row that read the input.
    private (int Start, int End) WindowColumns() =>
        (Math.Clamp(-_offsetX, 0, OutWidth), Math.Clamp(InWidth - _offsetX, 0, OutWidth));

    private void WindowForward(ReadOnlySpan<float> input, Span<float> output, int channels)
    {
        int nIn = InPixels, nOut = OutPixels, inW = InWidth, outW = OutWidth;
        var (x0, x1) = WindowColumns();
        for (int c = 0; c < channels; c++)
        {
            ReadOnlySpan<float> src = input.Slice(c * nIn, nIn);
            Span<float> dst = output.Slice(c * nOut, nOut);
            for (int y = 0; y < OutHeight; y++)
            {
                Span<float> row = dst.Slice(y * outW, outW);
                int sy = y + _offsetY;
                if (sy < 0 || sy >= InHeight || x1 <= x0)
                {
                    row.Fill(_fill);
                    continue;
                }
                row[..x0].Fill(_fill);
                src.Slice(sy * inW + x0 + _offsetX, x1 - x0).CopyTo(row[x0..x1]);
                row[x1..].Fill(_fill);
            }
        }
    }

    private void WindowAdjoint(ReadOnlySpan<float> outputGradient, Span<float> inputGradient, int channels)
    {
        int nIn = InPixels, nOut = OutPixels, inW = InWidth, outW = OutWidth;
        var (x0, x1) = WindowColumns();
        if (x1 <= x0)
            return;
        for (int c = 0; c < channels; c++)
        {
            ReadOnlySpan<float> g = outputGradient.Slice(c * nOut, nOut);
            Span<float> dst = inputGradient.Slice(c * nIn, nIn);
            for (int y = Math.Max(0, -_offsetY); y < Math.Min(OutHeight, InHeight - _offsetY); y++)
                g.Slice(y * outW + x0, x1 - x0).CopyTo(dst.Slice((y + _offsetY) * inW + x0 + _offsetX, x1 - x0));
        }
    }

    private void ResizeForward(ReadOnlySpan<float> input, Span<float> output, int channels)
    {
        int nIn = InPixels, nOut = OutPixels, inW = InWidth, outW = OutWidth;
        for (int c = 0; c < channels; c++)
        {
            ReadOnlySpan<float> src = input.Slice(c * nIn, nIn);
            Span<float> dst = output.Slice(c * nOut, nOut);
            for (int y = 0; y < OutHeight; y++)
            {
                int yv = y + _offsetY;
                ReadOnlySpan<float> r0 = src.Slice(_rowTap[2 * yv] * inW, inW), r1 = src.Slice(_rowTap[2 * yv + 1] * inW, inW);
                float wy0 = _rowWeight[2 * yv], wy1 = _rowWeight[2 * yv + 1];
                Span<float> row = dst.Slice(y * outW, outW);
                for (int x = 0; x < outW; x++)
                {
                    int xv = x + _offsetX, t0 = _colTap[2 * xv], t1 = _colTap[2 * xv + 1];
                    float wx0 = _colWeight[2 * xv], wx1 = _colWeight[2 * xv + 1];
                    row[x] = wy0 * wx0 * r0[t0] + wy0 * wx1 * r0[t1] + wy1 * wx0 * r1[t0] + wy1 * wx1 * r1[t1];
                }
            }
        }
    }

    private void ResizeAdjoint(ReadOnlySpan<float> outputGradient, Span<float> inputGradient, int channels)
    {
        int nIn = InPixels, nOut = OutPixels, inW = InWidth, outW = OutWidth;
        for (int c = 0; c < channels; c++)
        {
            ReadOnlySpan<float> g = outputGradient.Slice(c * nOut, nOut);
            Span<float> dst = inputGradient.Slice(c * nIn, nIn);
            for (int y = 0; y < OutHeight; y++)
            {
                int yv = y + _offsetY, o0 = _rowTap[2 * yv] * inW, o1 = _rowTap[2 * yv + 1] * inW;
                float wy0 = _rowWeight[2 * yv], wy1 = _rowWeight[2 * yv + 1];
                ReadOnlySpan<float> row = g.Slice(y * outW, outW);
                for (int x = 0; x < outW; x++)
                {
                    float v = row[x];
                    if (v == 0f)
                        continue;
                    int xv = x + _offsetX, t0 = _colTap[2 * xv], t1 = _colTap[2 * xv + 1];
                    float wx0 = _colWeight[2 * xv], wx1 = _colWeight[2 * xv + 1];
                    dst[o0 + t0] += wy0 * wx0 * v;
                    dst[o0 + t1] += wy0 * wx1 * v;
                    dst[o1 + t0] += wy1 * wx0 * v;
                    dst[o1 + t1] += wy1 * wx1 * v;
                }
            }
        }
    }

    // The taps of output pixel (y, x) of a rotation, in the order and with the weights of the tap tables; returns their count.
    private int RotationTaps(int y, int x, Span<int> index, Span<float> weight)
    {
        int yv = y + _offsetY, xv = x + _offsetX;
        double sx = _colCos[xv] - _rowSin[yv] + _centerX, sy = _colSin[xv] + _rowCos[yv] + _centerY;
        int x0 = (int)Math.Floor(sx), y0 = (int)Math.Floor(sy);
        float fx = (float)(sx - x0), fy = (float)(sy - y0);
        int n = 0;
        n = RotationTap(y0, x0, (1 - fy) * (1 - fx), index, weight, n);
        n = RotationTap(y0, x0 + 1, (1 - fy) * fx, index, weight, n);
        n = RotationTap(y0 + 1, x0, fy * (1 - fx), index, weight, n);
        return RotationTap(y0 + 1, x0 + 1, fy * fx, index, weight, n);
    }

    private int RotationTap(int y, int x, float w, Span<int> index, Span<float> weight, int n)
    {
        if (y < 0 || y >= InHeight || x < 0 || x >= InWidth || w == 0f)
            return n;
        index[n] = y * InWidth + x;
        weight[n] = w;
        return n + 1;
    }

    private void RotationForward(ReadOnlySpan<float> input, Span<float> output, int channels)
    {
        int nIn = InPixels, nOut = OutPixels, outW = OutWidth;
        Span<int> index = stackalloc int[Taps];
        Span<float> weight = stackalloc float[Taps];
        for (int y = 0; y < OutHeight; y++)
            for (int x = 0; x < outW; x++)
            {
                int n = RotationTaps(y, x, index, weight), p = y * outW + x;
                for (int c = 0; c < channels; c++)
                {
                    ReadOnlySpan<float> src = input.Slice(c * nIn, nIn);
                    float v = 0f;
                    for (int t = 0; t < n; t++)
                        v += weight[t] * src[index[t]];
                    output[c * nOut + p] = v;
                }
            }
    }

    private void RotationAdjoint(ReadOnlySpan<float> outputGradient, Span<float> inputGradient, int channels)
    {
        int nIn = InPixels, nOut = OutPixels, outW = OutWidth;
        Span<int> index = stackalloc int[Taps];
        Span<float> weight = stackalloc float[Taps];
        for (int y = 0; y < OutHeight; y++)
            for (int x = 0; x < outW; x++)
            {
                int n = RotationTaps(y, x, index, weight), p = y * outW + x;
                for (int c = 0; c < channels; c++)
                {
                    float v = outputGradient[c * nOut + p];
                    if (v == 0f)
                        continue;
                    Span<float> dst = inputGradient.Slice(c * nIn, nIn);
                    for (int t = 0; t < n; t++)
                        dst[index[t]] += weight[t] * v;
                }
            }
    }

    private void TapsForward(ReadOnlySpan<float> input, Span<float> output, int channels)
    {
        int nIn = InPixels, nOut = OutPixels;
        for (int c = 0; c < channels; c++)
        {
            ReadOnlySpan<float> src = input.Slice(c * nIn, nIn);
            Span<float> dst = output.Slice(c * nOut, nOut);
            for (int p = 0; p < nOut; p++)
            {
                int o = p * Taps;
                dst[p] = _bias[p] + _weight[o] * src[_index[o]] + _weight[o + 1] * src[_index[o + 1]]
                    + _weight[o + 2] * src[_index[o + 2]] + _weight[o + 3] * src[_index[o + 3]];
            }
        }
    }

    private void TapsAdjoint(ReadOnlySpan<float> outputGradient, Span<float> inputGradient, int channels)
    {
        int nIn = InPixels, nOut = OutPixels;
        for (int c = 0; c < channels; c++)
        {
            ReadOnlySpan<float> g = outputGradient.Slice(c * nOut, nOut);
            Span<float> dst = inputGradient.Slice(c * nIn, nIn);
            for (int p = 0; p < nOut; p++)
            {
                float v = g[p];
                if (v == 0f)
                    continue;
                int o = p * Taps;
                dst[_index[o]] += _weight[o] * v;
                dst[_index[o + 1]] += _weight[o + 1] * v;
                dst[_index[o + 2]] += _weight[o + 2] * v;
                dst[_index[o + 3]] += _weight[o + 3] * v;
            }
        }
    }
}
