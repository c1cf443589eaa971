namespace Microsoft.ML.ActivationAtlas.Extraction;

/// <summary>
/// How 8-bit RGB pixels (0..255, from an <c>MLImage</c> or a float vector of pixel values) become the network's
/// input tensor: scaled linearly to <see cref="Range"/>, then per channel <c>(v - Mean[c]) / Std[c]</c>, put in
/// <see cref="ChannelOrder"/> and laid out planar [N, C, H, W] or interleaved [N, H, W, C].
/// </summary>
public sealed class ImagePreprocessing
{
    /// <summary>The value pixel 0 maps to. Default 0.</summary>
    public float RangeMin { get; set; }

    /// <summary>The value pixel 255 maps to. Default 1.</summary>
    public float RangeMax { get; set; } = 1f;

    /// <summary>Per-channel mean (in RGB order, after scaling to the range), subtracted. Default none (zeros).</summary>
    public float[]? Mean { get; set; }

    /// <summary>Per-channel standard deviation (in RGB order), divided by. Default none (ones).</summary>
    public float[]? Std { get; set; }

    /// <summary>The channel order the network expects. Default <see cref="Extraction.ChannelOrder.Rgb"/>.</summary>
    public ChannelOrder ChannelOrder { get; set; } = ChannelOrder.Rgb;

    /// <summary>Whether the network takes planar [N, C, H, W] input (true, the default) or interleaved [N, H, W, C].</summary>
    public bool Planar { get; set; } = true;

    /// <summary>Pixels scaled to [0, 1], no mean or std, RGB, planar.</summary>
    public static ImagePreprocessing UnitRange => new();

    /// <summary>Pixel values passed through unchanged (0..255), RGB, planar: for already-prepared float inputs or models that normalize themselves.</summary>
    public static ImagePreprocessing Identity => new() { RangeMin = 0, RangeMax = 255 };

    /// <summary>The torchvision ImageNet convention: [0, 1], mean (0.485, 0.456, 0.406), std (0.229, 0.224, 0.225), RGB, planar.</summary>
    public static ImagePreprocessing ImageNet => new() { Mean = [0.485f, 0.456f, 0.406f], Std = [0.229f, 0.224f, 0.225f] };

    /// <summary>The InceptionV1 (GoogLeNet of Lucid / the Activation Atlas article) convention: values in [-117, 138], RGB, planar.</summary>
    public static ImagePreprocessing InceptionV1 => new() { RangeMin = -117, RangeMax = 138 };

    /// <summary>A copy.</summary>
    public ImagePreprocessing Clone() => new()
    {
        RangeMin = RangeMin,
        RangeMax = RangeMax,
        Mean = Mean?.ToArray(),
        Std = Std?.ToArray(),
        ChannelOrder = ChannelOrder,
        Planar = Planar,
    };

    /// <summary>Per output channel (in network order): the factor a and offset b with <c>value = pixel * a + b</c>; also the source RGB channel.</summary>
    internal (float[] Scale, float[] Offset, int[] SourceChannel) Affine()
    {
        if (Mean is { Length: not 3 })
            throw new ArgumentException($"ImagePreprocessing.Mean must have 3 values (R, G, B); it has {Mean.Length}.");
        if (Std is { Length: not 3 })
            throw new ArgumentException($"ImagePreprocessing.Std must have 3 values (R, G, B); it has {Std.Length}.");
        if (Std is not null && Std.Any(s => s == 0 || !float.IsFinite(s)))
            throw new ArgumentException("ImagePreprocessing.Std values must be finite and non-zero.");
        if (!(RangeMax > RangeMin))
            throw new ArgumentException($"ImagePreprocessing range [{RangeMin}, {RangeMax}] is empty; RangeMax must exceed RangeMin.");
        var scale = new float[3];
        var offset = new float[3];
        var source = new int[3];
        for (int c = 0; c < 3; c++)
        {
            int rgb = ChannelOrder == ChannelOrder.Rgb ? c : 2 - c;
            float mean = Mean?[rgb] ?? 0f, std = Std?[rgb] ?? 1f;
            float a = (RangeMax - RangeMin) / 255f;
            scale[c] = a / std;
            offset[c] = (RangeMin - mean) / std;
            source[c] = rgb;
        }
        return (scale, offset, source);
    }
}
