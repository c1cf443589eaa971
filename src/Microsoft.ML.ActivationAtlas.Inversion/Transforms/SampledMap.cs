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

    public int InHeight { get; private set; }
    public int InWidth { get; private set; }
    public int OutHeight { get; private set; }
    public int OutWidth { get; private set; }
    public int OutPixels => OutHeight * OutWidth;
    public int InPixels => InHeight * InWidth;

    /// <summary>The buffer a <see cref="SamplingTransform"/> writes its positions into.</summary>
    public SamplePositions Positions { get; } = new();

    private void Reset(int inH, int inW, int outH, int outW)
    {
        if (inH < 1 || inW < 1 || outH < 1 || outW < 1)
            throw new InvalidOperationException($"A transform produced an empty image ({inH}x{inW} -> {outH}x{outW}); the icon is too small for the transforms.");
        InHeight = inH; InWidth = inW; OutHeight = outH; OutWidth = outW;
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

    /// <summary>Bilinear resize; <paramref name="halfPixel"/> selects half-pixel centres (else TensorFlow 1's legacy corner mapping). Edges clamp.</summary>
    public void SetResize(int inH, int inW, int outH, int outW, bool halfPixel)
    {
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

    /// <summary>Bilinear rotation by <paramref name="degrees"/> about the image centre, same size, zeros outside.</summary>
    public void SetRotation(int h, int w, double degrees)
    {
        Reset(h, w, h, w);
        double a = degrees * Math.PI / 180.0, cos = Math.Cos(a), sin = Math.Sin(a);
        double cy = (h - 1) / 2.0, cx = (w - 1) / 2.0;
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

    /// <summary>The transpose of the linear part: overwrites <paramref name="inputGradient"/> with M^T <paramref name="outputGradient"/>.</summary>
    public void Adjoint(ReadOnlySpan<float> outputGradient, Span<float> inputGradient, int channels)
    {
        int nIn = InPixels, nOut = OutPixels;
        inputGradient[..(channels * nIn)].Clear();
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
