using SkiaSharp;

namespace Microsoft.ML.ActivationAtlas.Extraction;

/// <summary>
/// Decodes an image file and resizes it to the network's size with SkiaSharp (center crop to the target aspect
/// ratio, then bilinear resampling), straight into a batch slot. Used when the input column holds image paths.
/// </summary>
internal static class ImageFileDecoder
{
    /// <summary>
    /// The part of a <paramref name="fileWidth"/> x <paramref name="fileHeight"/> image that becomes the network's
    /// <paramref name="width"/> x <paramref name="height"/> input: the center crop to the target aspect ratio (what
    /// ML.NET's ResizeImages does by default), which is then scaled.
    /// </summary>
    public static (int X, int Y, int Width, int Height) CenterCrop(int fileWidth, int fileHeight, int width, int height)
    {
        float scale = Math.Max((float)width / fileWidth, (float)height / fileHeight);
        int cropW = Math.Min(fileWidth, (int)Math.Round(width / scale)), cropH = Math.Min(fileHeight, (int)Math.Round(height / scale));
        return ((fileWidth - cropW) / 2, (fileHeight - cropH) / 2, cropW, cropH);
    }

    /// <summary>Fills <paramref name="slot"/> from the file; returns null or why the image could not be used.</summary>
    public static string? Decode(string path, PixelConverter converter, Span<float> slot)
    {
        string? error = DecodeToSize(path, converter.Width, converter.Height, out var resized);
        if (error is not null)
            return error;
        using (resized)
            return converter.FromBgra(resized!.GetPixelSpan(), slot);
    }

    /// <summary>
    /// Decodes the file into a <paramref name="w"/> x <paramref name="h"/> BGRA bitmap as the network sees it (center
    /// crop, bilinear resize); returns null or why the image could not be used.
    /// </summary>
    public static string? DecodeToSize(string path, int w, int h, out SKBitmap? resized)
    {
        resized = null;
        if (string.IsNullOrEmpty(path))
            return "the image path is empty";
        if (!File.Exists(path))
            return $"image file '{path}' does not exist";
        using var decoded = SKBitmap.Decode(path);
        if (decoded is null || decoded.Width == 0 || decoded.Height == 0)
            return $"image file '{path}' is not a readable image (corrupt or unsupported format)";
        var target = new SKImageInfo(w, h, SKColorType.Bgra8888, SKAlphaType.Unpremul);
        var (cropX, cropY, cropW, cropH) = CenterCrop(decoded.Width, decoded.Height, w, h);
        SKBitmap source = decoded;
        SKBitmap? cropped = null;
        if (cropW != decoded.Width || cropH != decoded.Height)
        {
            cropped = new SKBitmap();
            if (!decoded.ExtractSubset(cropped, SKRectI.Create(cropX, cropY, cropW, cropH)))
                return $"image file '{path}' could not be cropped to {w}:{h}";
            source = cropped;
        }
        resized = source.Width == w && source.Height == h && source.ColorType == SKColorType.Bgra8888
            ? source.Copy()
            : source.Resize(target, new SKSamplingOptions(SKFilterMode.Linear, SKMipmapMode.Linear));
        cropped?.Dispose();
        return resized is null ? $"image file '{path}' could not be resized to {w}x{h}" : null;
    }
}
