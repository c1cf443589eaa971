using Microsoft.ML.Data;
using Microsoft.ML.ActivationAtlas.Tests.Infrastructure;
using SkiaSharp;

namespace Microsoft.ML.ActivationAtlas.Tests.Binning;

/// <summary>One CIFAR-10 test image as an atlas row: a colour layout, downsampled pixels as "activations", a one-hot "attribution".</summary>
public sealed class CifarRow
{
    public string Path { get; set; } = "";

    public string Label { get; set; } = "";

    [VectorType(2)]
    public float[] Layout { get; set; } = [];

    [VectorType(CifarRows.Dim)]
    public float[] Activation { get; set; } = [];

    [VectorType(10)]
    public float[] Attribution { get; set; } = [];
}

/// <summary>
/// Real image rows for the binning tests. The layout is a simple colour statistic of each image
/// (x = mean red minus mean blue, y = mean brightness), so cells group visually similar images.
/// </summary>
internal static class CifarRows
{
    public const int Dim = 8 * 8 * 3;

    private static readonly Dictionary<int, CifarRow[]> s_cache = new();

    public static string[] ClassNames => Directory.GetDirectories(SharedData.Cifar10Test).Select(System.IO.Path.GetFileName).OrderBy(n => n, StringComparer.Ordinal).ToArray()!;

    public static CifarRow[] Load(int perClass)
    {
        lock (s_cache)
        {
            if (s_cache.TryGetValue(perClass, out var rows))
                return rows;
            var names = ClassNames;
            rows = SharedData.CifarImages(perClass).Select(item =>
            {
                using var bmp = SKBitmap.Decode(item.Path) ?? throw new InvalidDataException($"Cannot decode {item.Path}");
                var act = new float[Dim];
                double r = 0, g = 0, b = 0;
                for (int y = 0; y < bmp.Height; y++)
                    for (int x = 0; x < bmp.Width; x++)
                    {
                        var c = bmp.GetPixel(x, y);
                        int cell = ((y * 8 / bmp.Height) * 8 + x * 8 / bmp.Width) * 3;
                        act[cell] += c.Red / 255f / 16f;
                        act[cell + 1] += c.Green / 255f / 16f;
                        act[cell + 2] += c.Blue / 255f / 16f;
                        r += c.Red; g += c.Green; b += c.Blue;
                    }
                int n = bmp.Width * bmp.Height * 255;
                var attribution = new float[10];
                attribution[Array.IndexOf(names, item.Label)] = 1f;
                return new CifarRow
                {
                    Path = item.Path,
                    Label = item.Label,
                    Layout = [(float)((r - b) / n), (float)((r + g + b) / (3.0 * n))],
                    Activation = act,
                    Attribution = attribution,
                };
            }).ToArray();
            s_cache[perClass] = rows;
            return rows;
        }
    }
}
