namespace Microsoft.ML.ActivationAtlas.Inversion.Transforms;

/// <summary>
/// One icon's drawn sequence of transforms (plus an optional final resize to the network's input) with the
/// intermediate images kept for the adjoint. Reused across steps: <see cref="Draw"/> redraws every random map.
/// A crop drawn after a window (pad, jitter, crop), a resize or a rotation is absorbed into that map (it only selects
/// part of its output), so the article's pad and five jitters run as one copy; the values are those of the maps apart.
/// </summary>
internal sealed class TransformChain
{
    private const int Channels = 3;
    private readonly List<SampledMap> _maps = [];
    private readonly List<float[]> _buffers = [];
    private float[] _gradA = [];
    private float[] _gradB = [];
    private int _count;

    public int OutHeight { get; private set; }

    /// <summary>
    /// Whether every map is kept apart and stored as tap tables (the reference form of <see cref="SampledMap.TapTables"/>,
    /// for checking the on-the-fly and absorbed maps); the default false.
    /// </summary>
    public bool TapTables { get; set; }

    /// <summary>The number of maps applied (after absorbing crops).</summary>
    public int MapCount => _count;
    public int OutWidth { get; private set; }

    /// <summary>Draws every step for an input of <paramref name="height"/> x <paramref name="width"/>; then resizes to the target if it differs.</summary>
    public void Draw(IReadOnlyList<ImageTransform> transforms, Random random, int height, int width, int targetHeight, int targetWidth)
    {
        _count = 0;
        int h = height, w = width;
        foreach (var t in transforms)
        {
            var map = Next();
            map.TapTables = TapTables;
            t.Draw(random, h, w, map);
            h = map.OutHeight;
            w = map.OutWidth;
            if (!TapTables && _count > 1 && _maps[_count - 2].TryAbsorbCrop(map))
                _count--;
        }
        if (h != targetHeight || w != targetWidth)
        {
            var map = Next();
            map.TapTables = TapTables;
            map.SetResize(h, w, targetHeight, targetWidth, halfPixel: true);
            h = targetHeight;
            w = targetWidth;
        }
        OutHeight = h;
        OutWidth = w;
        for (int i = 0; i < _count; i++)
        {
            int n = Channels * _maps[i].OutPixels;
            if (_buffers[i].Length < n)
                _buffers[i] = new float[n];
        }
    }

    private SampledMap Next()
    {
        if (_count == _maps.Count)
        {
            _maps.Add(new SampledMap());
            _buffers.Add([]);
        }
        return _maps[_count++];
    }

    /// <summary>Applies the drawn chain; the result is written to <paramref name="output"/> (size 3 x OutHeight x OutWidth).</summary>
    public void Forward(ReadOnlySpan<float> image, Span<float> output)
    {
        if (_count == 0)
        {
            image[..(Channels * OutHeight * OutWidth)].CopyTo(output);
            return;
        }
        ReadOnlySpan<float> src = image;
        for (int i = 0; i < _count; i++)
        {
            Span<float> dst = i == _count - 1 ? output : _buffers[i];
            _maps[i].Forward(src, dst, Channels);
            src = _buffers[i];
        }
    }

    /// <summary>Overwrites <paramref name="imageGradient"/> with the chain's adjoint applied to <paramref name="outputGradient"/>.</summary>
    public void Adjoint(ReadOnlySpan<float> outputGradient, Span<float> imageGradient)
    {
        if (_count == 0)
        {
            outputGradient[..(Channels * OutHeight * OutWidth)].CopyTo(imageGradient);
            return;
        }
        int max = 0;
        for (int i = 0; i < _count; i++)
            max = Math.Max(max, Channels * Math.Max(_maps[i].InPixels, _maps[i].OutPixels));
        if (_gradA.Length < max)
        {
            _gradA = new float[max];
            _gradB = new float[max];
        }
        ReadOnlySpan<float> g = outputGradient;
        for (int i = _count - 1; i >= 0; i--)
        {
            Span<float> dst = i == 0 ? imageGradient : ((_count - 1 - i) % 2 == 0 ? _gradA : _gradB);
            _maps[i].Adjoint(g, dst, Channels);
            g = dst;
        }
    }
}
