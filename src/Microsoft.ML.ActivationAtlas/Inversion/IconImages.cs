using Microsoft.ML.ActivationAtlas.Inversion.Parameterization;
using Microsoft.ML.ActivationAtlas.Inversion.Transforms;
using Microsoft.ML.Data;

namespace Microsoft.ML.ActivationAtlas.Inversion;

/// <summary>Conversions between rendered icons, <see cref="MLImage"/> and planar float images.</summary>
public static class IconImages
{
    /// <summary>The icon as an RGBA <see cref="MLImage"/>.</summary>
    /// <param name="icon">The icon.</param>
    public static MLImage ToMLImage(RenderedIcon icon)
    {
        ArgumentNullException.ThrowIfNull(icon);
        return MLImage.CreateFromPixels(icon.Size, icon.Size, MLPixelFormat.Rgba32, icon.ToRgba());
    }

    /// <summary>Lays icons out row-major in a grid (<paramref name="columns"/> wide, <paramref name="gap"/> px of white between) as one image.</summary>
    /// <param name="icons">The icons, all of one size; null entries stay white.</param>
    /// <param name="columns">Icons per row.</param>
    /// <param name="gap">Pixels between icons.</param>
    public static MLImage Grid(IReadOnlyList<RenderedIcon?> icons, int columns, int gap = 2)
    {
        ArgumentNullException.ThrowIfNull(icons);
        if (columns < 1)
            throw new ArgumentOutOfRangeException(nameof(columns), "At least one column is needed.");
        var first = icons.FirstOrDefault(i => i is not null) ?? throw new ArgumentException("There are no icons to lay out.", nameof(icons));
        int s = first.Size, rows = (icons.Count + columns - 1) / columns;
        int width = columns * s + (columns - 1) * gap, height = rows * s + (rows - 1) * gap;
        var rgba = new byte[4 * width * height];
        Array.Fill(rgba, (byte)255);
        for (int k = 0; k < icons.Count; k++)
        {
            if (icons[k] is not { } icon)
                continue;
            if (icon.Size != s)
                throw new ArgumentException("All icons of a grid must have the same size.", nameof(icons));
            var src = icon.ToRgba();
            int ox = (k % columns) * (s + gap), oy = (k / columns) * (s + gap);
            for (int y = 0; y < s; y++)
                Array.Copy(src, 4 * y * s, rgba, 4 * ((oy + y) * width + ox), 4 * s);
        }
        return MLImage.CreateFromPixels(width, height, MLPixelFormat.Rgba32, rgba);
    }

    /// <summary>
    /// The mean amplitude spectrum of images at the icon size, the fixed magnitude of MACO icons
    /// (<see cref="FeatureInversionEstimator.Options.MacoMagnitude"/>); see <see cref="MacoImageParameterization.MeanAmplitude"/>.
    /// </summary>
    /// <param name="images">Natural images, e.g. the atlas's own (any size; each is resized to <paramref name="size"/>).</param>
    /// <param name="size">The icon side in pixels.</param>
    /// <param name="decorrelateColors">Whether the icons use lucid's colour decorrelation (as the default options do).</param>
    public static float[] MeanAmplitudeSpectrum(IEnumerable<MLImage> images, int size, bool decorrelateColors = true)
    {
        ArgumentNullException.ThrowIfNull(images);
        if (size < 8)
            throw new ArgumentOutOfRangeException(nameof(size), size, "The icon size must be at least 8 pixels.");
        var resized = new List<float>();
        int count = 0, n = 3 * size * size;
        var buffer = new float[n];
        foreach (var image in images)
        {
            ArgumentNullException.ThrowIfNull(image, nameof(images));
            ImageResize.Bilinear(ToPlanar(image), 3, image.Height, image.Width, buffer, size, size);
            resized.AddRange(buffer);
            count++;
        }
        if (count == 0)
            throw new ArgumentException("At least one image is needed for the MACO magnitude.", nameof(images));
        return MacoImageParameterization.MeanAmplitude(resized.ToArray(), count, size, decorrelateColors);
    }

    /// <summary>An image's pixels as planar RGB in [0, 1], <c>[3, height, width]</c>.</summary>
    /// <param name="image">The image (RGBA or BGRA, 32 bits per pixel).</param>
    public static float[] ToPlanar(MLImage image)
    {
        ArgumentNullException.ThrowIfNull(image);
        var px = image.Pixels;
        int w = image.Width, h = image.Height, n = w * h;
        bool bgra = image.PixelFormat == MLPixelFormat.Bgra32;
        if (image.BitsPerPixel != 32)
            throw new NotSupportedException($"Images of {image.BitsPerPixel} bits per pixel are not supported; 32-bit RGBA or BGRA is.");
        var planar = new float[3 * n];
        for (int p = 0; p < n; p++)
        {
            float r = px[4 * p], g = px[4 * p + 1], b = px[4 * p + 2];
            planar[p] = (bgra ? b : r) / 255f;
            planar[n + p] = g / 255f;
            planar[2 * n + p] = (bgra ? r : b) / 255f;
        }
        return planar;
    }
}
