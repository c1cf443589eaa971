using Microsoft.ML.ActivationAtlas.Inversion.Transforms;
using Microsoft.ML.ActivationAtlas.Tests.Infrastructure;
using SkiaSharp;

namespace Microsoft.ML.ActivationAtlas.Tests.Inversion;

/// <summary>Loads CIFAR-10 test images as planar RGB in [0, 1], bilinearly resized to a network input size.</summary>
internal static class CifarImages
{
    public static float[] Load(IReadOnlyList<string> paths, int size)
    {
        var result = new float[paths.Count * 3 * size * size];
        var map = new SampledMap();
        for (int i = 0; i < paths.Count; i++)
        {
            using var bitmap = SKBitmap.Decode(paths[i]) ?? throw new InvalidDataException($"Cannot decode {paths[i]}");
            int h = bitmap.Height, w = bitmap.Width;
            var planar = new float[3 * h * w];
            for (int y = 0; y < h; y++)
                for (int x = 0; x < w; x++)
                {
                    var c = bitmap.GetPixel(x, y);
                    planar[y * w + x] = c.Red / 255f;
                    planar[h * w + y * w + x] = c.Green / 255f;
                    planar[2 * h * w + y * w + x] = c.Blue / 255f;
                }
            map.SetResize(h, w, size, size, halfPixel: true);
            map.Forward(planar, result.AsSpan(i * 3 * size * size, 3 * size * size), 3);
        }
        return result;
    }

    /// <summary>Activation vectors at one position: <c>[count, channels]</c> from a layer <c>[count, c, h, w]</c>.</summary>
    public static float[] At(float[] layer, int count, int channels, int height, int width, int y, int x)
    {
        var result = new float[count * channels];
        for (int i = 0; i < count; i++)
            for (int c = 0; c < channels; c++)
                result[i * channels + c] = layer[((i * channels + c) * height + y) * width + x];
        return result;
    }

    public static IReadOnlyList<string> Paths(int perClass, int skip = 0) =>
        SharedData.CifarImages(perClass + skip).GroupBy(p => p.Label).SelectMany(g => g.Skip(skip)).Select(p => p.Path).ToList();
}
