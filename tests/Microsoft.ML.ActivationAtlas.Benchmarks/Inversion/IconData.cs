using Microsoft.ML.ActivationAtlas.Inversion.Network;
using Microsoft.ML.ActivationAtlas.Inversion.Transforms;
using SkiaSharp;

namespace Microsoft.ML.ActivationAtlas.Benchmarks.Inversion;

/// <summary>Real inputs of the inversion benchmarks: CIFAR-10 images, the ResNet18 package files, layer activations.</summary>
internal static class IconData
{
    public static readonly string ResNetFolder = Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile),
        ".nuget", "packages", "microsoft.ml.dnnimagefeaturizer.resnet18", "0.23.1", "tools", "DnnImageModels");

    public static string ResNet18 => Path.Combine(ResNetFolder, "ResNet18Onnx", "ResNet18.onnx");

    public static string ResNet18Preprocess => Path.Combine(ResNetFolder, "ResNetPrepOnnx", "ResNetPreprocess.onnx");

    /// <summary>The first <paramref name="perClass"/> images of every class, classes in name order.</summary>
    public static IEnumerable<string> CifarPaths(int perClass) =>
        Directory.GetDirectories(SharedData.Cifar10Test).Order(StringComparer.Ordinal)
            .SelectMany(d => Directory.GetFiles(d, "*.jpg").Order(StringComparer.Ordinal).Take(perClass));

    /// <summary>Planar RGB in [0, 1], bilinearly resized to <paramref name="size"/>.</summary>
    public static void LoadImage(string path, int size, Span<float> destination)
    {
        using var bmp = SKBitmap.Decode(path) ?? throw new InvalidDataException($"Cannot decode {path}");
        var planar = new float[3 * bmp.Width * bmp.Height];
        int plane = bmp.Width * bmp.Height;
        for (int y = 0; y < bmp.Height; y++)
            for (int x = 0; x < bmp.Width; x++)
            {
                var px = bmp.GetPixel(x, y);
                planar[y * bmp.Width + x] = px.Red / 255f;
                planar[plane + y * bmp.Width + x] = px.Green / 255f;
                planar[2 * plane + y * bmp.Width + x] = px.Blue / 255f;
            }
        ImageResize.Bilinear(planar, 3, bmp.Height, bmp.Width, destination, size, size);
    }

    /// <summary>
    /// One activation vector per image at the layer position <paramref name="position"/> picks (given the image index
    /// and the layer's height and width); null picks the centre.
    /// </summary>
    public static List<float[]> Activations(OnnxLayerGradientModel model, IReadOnlyList<string> paths, int size, Func<int, int, int, (int Y, int X)>? position = null)
    {
        // A token layer is [C, T]: its class and register tokens, then the h x w patch grid.
        int n = 3 * size * size, c = model.LayerChannels, h = model.LayerHeight, w = model.LayerWidth;
        int first = model.Tokens?.PrefixTokens ?? 0, plane = first + h * w, l = c * plane;
        var result = new List<float[]>();
        for (int start = 0; start < paths.Count; start += 32)
        {
            int count = Math.Min(32, paths.Count - start);
            var images = new float[count * n];
            for (int i = 0; i < count; i++)
                LoadImage(paths[start + i], size, images.AsSpan(i * n, n));
            var layer = new float[count * l];
            model.Forward(images, count, layer);
            for (int i = 0; i < count; i++)
            {
                var (py, px) = position?.Invoke(start + i, h, w) ?? (h / 2, w / 2);
                result.Add(Enumerable.Range(0, c).Select(ch => layer[i * l + ch * plane + first + py * w + px]).ToArray());
            }
        }
        return result;
    }
}
