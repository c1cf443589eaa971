using SkiaSharp;

namespace Microsoft.ML.ActivationAtlas.Extraction;

/// <summary>
/// Decodes an image file and resizes it to the network's size with SkiaSharp (center crop to the target aspect
/// ratio, then bilinear resampling), straight into a batch slot. Used when the input column holds image paths.
/// </summary>
internal static class ImageFileDecoder
{
    /// <summary>Fills <paramref name="slot"/> from the file; returns null or why the image could not be used.</summary>
    public static string? Decode(string path, PixelConverter converter, Span<float> slot)
    {
        if (string.IsNullOrEmpty(path))
            return "the image path is empty";
        if (!File.Exists(path))
            return $"image file '{path}' does not exist";
        using var decoded = SKBitmap.Decode(path);
        if (decoded is null || decoded.Width == 0 || decoded.Height == 0)
            return $"image file '{path}' is not a readable image (corrupt or unsupported format)";
        int w = converter.Width, h = converter.Height;
        var target = new SKImageInfo(w, h, SKColorType.Bgra8888, SKAlphaType.Unpremul);
        // Center crop to the target aspect ratio (what ML.NET's ResizeImages does by default), then scale.
        float scale = Math.Max((float)w / decoded.Width, (float)h / decoded.Height);
        int cropW = Math.Min(decoded.Width, (int)Math.Round(w / scale)), cropH = Math.Min(decoded.Height, (int)Math.Round(h / scale));
        SKBitmap source = decoded;
        SKBitmap? cropped = null;
        if (cropW != decoded.Width || cropH != decoded.Height)
        {
            cropped = new SKBitmap();
            if (!decoded.ExtractSubset(cropped, SKRectI.Create((decoded.Width - cropW) / 2, (decoded.Height - cropH) / 2, cropW, cropH)))
                return $"image file '{path}' could not be cropped to {w}:{h}";
            source = cropped;
        }
        using var resized = source.Width == w && source.Height == h && source.ColorType == SKColorType.Bgra8888
            ? source.Copy()
            : source.Resize(target, new SKSamplingOptions(SKFilterMode.Linear, SKMipmapMode.Linear));
        cropped?.Dispose();
        if (resized is null)
            return $"image file '{path}' could not be resized to {w}x{h}";
        return converter.FromBgra(resized.GetPixelSpan(), slot);
    }
}
