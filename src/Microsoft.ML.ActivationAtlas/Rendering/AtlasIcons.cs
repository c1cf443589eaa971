using Microsoft.ML.ActivationAtlas.Binning;
using SkiaSharp;

namespace Microsoft.ML.ActivationAtlas.Rendering;

/// <summary>How an inverted icon of an atlas cell was made and how well it matches the cell.</summary>
/// <param name="Fidelity">Cosine between the icon's activation at the layer and the cell's mean activation.</param>
/// <param name="Plausibility">Cosine between the icon's activation and its nearest real activation of the atlas's rows, or null when not measured.</param>
/// <param name="Steps">Optimisation steps the icon took.</param>
/// <param name="WarmStarted">Whether its optimisation started from its parent cell's (next coarser grid's) icon.</param>
public sealed record InvertedIconInfo(double Fidelity, double? Plausibility, int Steps, bool WarmStarted)
{
    /// <summary>
    /// Downstream agreement: the cosine between the icon's pooled features (the spatial mean of the layer, what a global
    /// pooling and a class head see) and its cell's members' mean pooled features, or null when not measured.
    /// </summary>
    public double? Agreement { get; init; }

    /// <summary>The cell's top class by its class values, or null when the atlas has none.</summary>
    public string? CellTopClass { get; init; }

    /// <summary>The icon's top class under the atlas's class head on its pooled features, or null when not measured.</summary>
    public string? IconTopClass { get; init; }

    /// <summary>Whether <see cref="IconTopClass"/> is <see cref="CellTopClass"/>; null when either is unknown.</summary>
    public bool? TopClassMatches => CellTopClass is null || IconTopClass is null ? null : CellTopClass == IconTopClass;
}

/// <summary>The quality of an atlas's inverted icons (<see cref="AtlasIcons.Quality"/>).</summary>
/// <param name="Icons">Inverted icons.</param>
/// <param name="Fidelity">Median fidelity, or null without icons.</param>
/// <param name="Plausibility">Median plausibility, or null where none measured.</param>
/// <param name="Agreement">Median downstream agreement, or null where none measured.</param>
/// <param name="ClassMatches">Icons whose top class is their cell's.</param>
/// <param name="ClassCompared">Icons with both top classes known.</param>
internal sealed record InvertedIconQuality(int Icons, double? Fidelity, double? Plausibility, double? Agreement, int ClassMatches, int ClassCompared);

/// <summary>
/// The icon of each atlas cell, as PNG bytes keyed by grid size and cell. Icons come from the cells' nearest example
/// images (<see cref="FromNearestExamples"/>) and, for the cells given one with <see cref="SetInverted"/>, from
/// feature inversion of the cells' mean activations; such a cell keeps its example image too
/// (<see cref="GetExample"/>), so a viewer can show either.
/// </summary>
public sealed class AtlasIcons
{
    private readonly Dictionary<(int, int, int), byte[]> _icons = new();
    private readonly Dictionary<(int, int, int), byte[]> _examples = new();
    private readonly Dictionary<(int, int, int), InvertedIconInfo> _inverted = new();

    /// <summary>Number of icons.</summary>
    public int Count => _icons.Count;

    /// <summary>Number of cells drawn with an inverted icon.</summary>
    public int InvertedCount => _inverted.Count;

    /// <summary>
    /// Sets the inverted icon of a cell: it is drawn from now on (<see cref="Get"/>), and the cell's earlier icon (its
    /// example image) stays available through <see cref="GetExample"/>.
    /// </summary>
    /// <param name="gridSize">Cells a side of the grid.</param>
    /// <param name="x">Cell column.</param>
    /// <param name="y">Cell row.</param>
    /// <param name="encodedImage">The encoded icon (PNG).</param>
    /// <param name="info">How it was made and its fidelity.</param>
    public void SetInverted(int gridSize, int x, int y, byte[] encodedImage, InvertedIconInfo info)
    {
        ArgumentNullException.ThrowIfNull(encodedImage);
        ArgumentNullException.ThrowIfNull(info);
        var key = (gridSize, x, y);
        if (!_inverted.ContainsKey(key) && _icons.TryGetValue(key, out var example))
            _examples[key] = example;
        _icons[key] = encodedImage;
        _inverted[key] = info;
    }

    /// <summary>The inversion of a cell's icon, or null when the cell is drawn as an example image.</summary>
    /// <param name="gridSize">Cells a side of the grid.</param>
    /// <param name="x">Cell column.</param>
    /// <param name="y">Cell row.</param>
    public InvertedIconInfo? Inversion(int gridSize, int x, int y) => _inverted.GetValueOrDefault((gridSize, x, y));

    /// <summary>The inverted icons' quality over all inverted cells: medians (null where none measured) and top-class matches.</summary>
    internal InvertedIconQuality Quality()
    {
        static double? Median(IEnumerable<double?> values)
        {
            var v = values.OfType<double>().Order().ToArray();
            return v.Length == 0 ? null : v.Length % 2 == 1 ? v[v.Length / 2] : (v[v.Length / 2 - 1] + v[v.Length / 2]) / 2;
        }
        var all = _inverted.Values.ToArray();
        return new InvertedIconQuality(all.Length, Median(all.Select(i => (double?)i.Fidelity)), Median(all.Select(i => i.Plausibility)),
            Median(all.Select(i => i.Agreement)), all.Count(i => i.TopClassMatches == true), all.Count(i => i.TopClassMatches is not null));
    }

    /// <summary>The example image of a cell (its icon when it has no inverted one), or null.</summary>
    /// <param name="gridSize">Cells a side of the grid.</param>
    /// <param name="x">Cell column.</param>
    /// <param name="y">Cell row.</param>
    public byte[]? GetExample(int gridSize, int x, int y) =>
        _examples.TryGetValue((gridSize, x, y), out var png) ? png : _inverted.ContainsKey((gridSize, x, y)) ? null : Get(gridSize, x, y);

    /// <summary>Sets the icon of cell (<paramref name="x"/>, <paramref name="y"/>) of the <paramref name="gridSize"/> grid from PNG (or JPEG) bytes.</summary>
    /// <param name="gridSize">Cells a side of the grid.</param>
    /// <param name="x">Cell column.</param>
    /// <param name="y">Cell row.</param>
    /// <param name="encodedImage">The encoded image.</param>
    public void Set(int gridSize, int x, int y, byte[] encodedImage)
    {
        ArgumentNullException.ThrowIfNull(encodedImage);
        _icons[(gridSize, x, y)] = encodedImage;
        _examples.Remove((gridSize, x, y));
        _inverted.Remove((gridSize, x, y));
    }

    /// <summary>Sets an icon from RGB values in [0, 1], interleaved (height x width x 3).</summary>
    /// <param name="gridSize">Cells a side of the grid.</param>
    /// <param name="x">Cell column.</param>
    /// <param name="y">Cell row.</param>
    /// <param name="rgb">Interleaved RGB values in [0, 1].</param>
    /// <param name="width">Icon width in pixels.</param>
    /// <param name="height">Icon height in pixels.</param>
    public void SetRgb(int gridSize, int x, int y, ReadOnlySpan<float> rgb, int width, int height)
    {
        if (rgb.Length != width * height * 3)
            throw new ArgumentException($"An RGB icon of {width}x{height} needs {width * height * 3} values, not {rgb.Length}.", nameof(rgb));
        var pixels = new byte[width * height * 4];
        for (int i = 0; i < width * height; i++)
        {
            pixels[4 * i] = ToByte(rgb[3 * i]);
            pixels[4 * i + 1] = ToByte(rgb[3 * i + 1]);
            pixels[4 * i + 2] = ToByte(rgb[3 * i + 2]);
            pixels[4 * i + 3] = 255;
        }
        Set(gridSize, x, y, EncodeRgba(pixels, width, height));

        static byte ToByte(float v) => (byte)Math.Clamp((int)MathF.Round(v * 255f), 0, 255);
    }

    /// <summary>Encodes opaque interleaved 8-bit RGBA as PNG.</summary>
    internal static byte[] EncodeRgba(byte[] rgba, int width, int height)
    {
        using var bmp = new SKBitmap(new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Opaque));
        System.Runtime.InteropServices.Marshal.Copy(rgba, 0, bmp.GetPixels(), rgba.Length);
        return Encode(bmp);
    }

    /// <summary>The icon of a cell, or null.</summary>
    /// <param name="gridSize">Cells a side of the grid.</param>
    /// <param name="x">Cell column.</param>
    /// <param name="y">Cell row.</param>
    public byte[]? Get(int gridSize, int x, int y) => _icons.TryGetValue((gridSize, x, y), out var png) ? png : null;

    /// <summary>
    /// Icons made from the images of each kept cell's member row nearest its mean activation (its first example).
    /// </summary>
    /// <param name="atlas">The aggregated atlas.</param>
    /// <param name="imagePathOfRow">The image file of a row of the aggregated data.</param>
    /// <param name="pixels">Icon side in pixels. Default 64.</param>
    public static AtlasIcons FromNearestExamples(GridAtlas atlas, Func<int, string> imagePathOfRow, int pixels = 64)
    {
        ArgumentNullException.ThrowIfNull(atlas);
        ArgumentNullException.ThrowIfNull(imagePathOfRow);
        var icons = new AtlasIcons();
        var cache = new Dictionary<int, byte[]>();
        foreach (var level in atlas.Levels)
            foreach (var cell in level.Cells)
            {
                if (cell.ExampleRows.Count == 0)
                    continue;
                int row = cell.ExampleRows[0];
                if (!cache.TryGetValue(row, out var png))
                    cache[row] = png = Thumbnail(imagePathOfRow(row), pixels);
                icons.Set(level.GridSize, cell.X, cell.Y, png);
            }
        return icons;
    }

    /// <summary>Decodes an image file and encodes it as a square PNG of <paramref name="pixels"/> a side (centre-cropped to a square).</summary>
    internal static byte[] Thumbnail(string path, int pixels)
    {
        using var bmp = Decode(path);
        int side = Math.Min(bmp.Width, bmp.Height);
        using var square = new SKBitmap(new SKImageInfo(pixels, pixels, SKColorType.Rgba8888, SKAlphaType.Premul));
        using (var canvas = new SKCanvas(square))
        using (var image = SKImage.FromBitmap(bmp))
        {
            var src = SKRect.Create((bmp.Width - side) / 2f, (bmp.Height - side) / 2f, side, side);
            canvas.DrawImage(image, src, SKRect.Create(0, 0, pixels, pixels), new SKSamplingOptions(SKFilterMode.Linear, SKMipmapMode.Linear));
        }
        return Encode(square);
    }

    /// <summary>
    /// Decodes an image file and encodes it as a PNG that fits in <paramref name="pixels"/> a side, keeping its aspect
    /// ratio and never enlarging it (the viewer scales small images up itself).
    /// </summary>
    internal static byte[] Preview(string path, int pixels)
    {
        using var bmp = Decode(path);
        float scale = Math.Min(1f, pixels / (float)Math.Max(bmp.Width, bmp.Height));
        if (scale >= 1f)
            return Encode(bmp);
        int w = Math.Max(1, (int)Math.Round(bmp.Width * scale)), h = Math.Max(1, (int)Math.Round(bmp.Height * scale));
        using var scaled = bmp.Resize(new SKImageInfo(w, h), new SKSamplingOptions(SKFilterMode.Linear, SKMipmapMode.Linear))
            ?? throw new InvalidDataException($"Cannot resize the image '{path}'.");
        return Encode(scaled);
    }

    internal static SKBitmap Decode(string path)
    {
        if (!File.Exists(path))
            throw new FileNotFoundException($"The image '{path}' does not exist.", path);
        return SKBitmap.Decode(path) ?? throw new InvalidDataException($"The file '{path}' is not a readable image.");
    }

    internal static SKBitmap Decode(byte[] encoded, string what)
        => SKBitmap.Decode(encoded) ?? throw new InvalidDataException($"The icon of {what} is not a readable image.");

    internal static byte[] Encode(SKBitmap bmp)
    {
        using var image = SKImage.FromBitmap(bmp);
        using var data = image.Encode(SKEncodedImageFormat.Png, 100);
        return data.ToArray();
    }
}
