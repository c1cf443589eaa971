using System.Globalization;
using System.Reflection;
using System.Text;
using System.Text.Json;
using Microsoft.ML.ActivationAtlas.Binning;
using SkiaSharp;

namespace Microsoft.ML.ActivationAtlas.Rendering;

/// <summary>
/// Writes a self-contained interactive viewer of an atlas: <c>index.html</c> (inline script and style, no network
/// access needed) with its assets beside it: <c>icons/</c> (sprite sheets per grid: the icons drawn, and for grids
/// with inverted icons the cells' example images too, so the viewer can switch each cell or all of them between its
/// icon and its example), <c>examples/</c> (thumbnails of the example rows) and <c>classes/</c> (per-class attribution
/// of every cell, loaded when a class is searched). An inverted cell shows its icon's fidelity in its detail; where the
/// atlas has inverted icons, the other cells are marked as example stand-ins.
/// </summary>
public static class AtlasViewerWriter
{
    private const int MaxSheetPixels = 4096;

    /// <summary>
    /// Writes the viewer into a new folder <paramref name="outputDirectory"/>. The folder is filled under a temporary
    /// name and renamed when complete; it must not exist unless <paramref name="overwrite"/> is set.
    /// </summary>
    /// <param name="atlas">The aggregated atlas.</param>
    /// <param name="icons">The icons of its cells.</param>
    /// <param name="outputDirectory">The folder to create.</param>
    /// <param name="options">Settings; null for the defaults.</param>
    /// <param name="overwrite">Replace an existing folder. Default false.</param>
    public static void Write(GridAtlas atlas, AtlasIcons icons, string outputDirectory, AtlasViewerOptions? options = null, bool overwrite = false)
        => AtomicOutput.WriteDirectory(outputDirectory, overwrite, dir => WriteInto(atlas, icons, dir, options ?? new AtlasViewerOptions()));

    /// <summary>Writes the viewer's files into an existing (temporary) folder.</summary>
    internal static void WriteInto(GridAtlas atlas, AtlasIcons icons, string directory, AtlasViewerOptions options)
    {
        ArgumentNullException.ThrowIfNull(atlas);
        ArgumentNullException.ThrowIfNull(icons);
        if (options.IconPixels < 8 || options.IconPixels > 512)
            throw new ArgumentOutOfRangeException(nameof(options), $"IconPixels must be in 8..512, not {options.IconPixels}.");
        Directory.CreateDirectory(Path.Combine(directory, "icons"));
        Directory.CreateDirectory(Path.Combine(directory, "examples"));
        Directory.CreateDirectory(Path.Combine(directory, "classes"));

        var levels = new List<object>();
        foreach (var level in atlas.Levels)
            levels.Add(WriteLevel(level, icons, atlas.ClassNames, directory, options.IconPixels));

        // Example thumbnails, once per row.
        var exampleNames = new SortedDictionary<int, string>();
        if (options.ImagePathOfRow is { } pathOf)
        {
            foreach (int row in atlas.Levels.SelectMany(l => l.Cells).SelectMany(c => c.ExampleRows).Distinct())
            {
                string path = pathOf(row);
                File.WriteAllBytes(Path.Combine(directory, "examples", row.ToString(CultureInfo.InvariantCulture) + ".png"), AtlasIcons.Preview(path, options.ExamplePixels));
                exampleNames[row] = Path.GetFileName(Path.GetDirectoryName(path)) + "/" + Path.GetFileName(path);
            }
        }

        // Per-class values of every kept cell, one script per class.
        for (int k = 0; k < atlas.ClassCount; k++)
        {
            var sb = new StringBuilder();
            sb.Append("window.atlasViewer.receiveClass(").Append(k.ToString(CultureInfo.InvariantCulture)).Append(", {");
            for (int l = 0; l < atlas.Levels.Count; l++)
            {
                var level = atlas.Levels[l];
                sb.Append(l == 0 ? "" : ",").Append('"').Append(level.GridSize.ToString(CultureInfo.InvariantCulture)).Append("\":[");
                for (int j = 0; j < level.Cells.Count; j++)
                    sb.Append(j == 0 ? "" : ",").Append(Number(level.Cells[j].MeanAttribution.Span[k]));
                sb.Append(']');
            }
            sb.Append("});\n");
            File.WriteAllText(Path.Combine(directory, "classes", $"c{k.ToString(CultureInfo.InvariantCulture)}.js"), sb.ToString());
        }

        if (options.InitialOverlay is int shown && (shown < 0 || shown >= options.Overlays.Count))
            throw new ArgumentOutOfRangeException(nameof(options), $"InitialOverlay {shown} is not one of the {options.Overlays.Count} overlays.");
        var overlays = options.Overlays.Select(o => new
        {
            name = o.Name,
            style = o.Style.ToString().ToLowerInvariant(),
            unit = o.Unit,
            levels = atlas.Levels.ToDictionary(l => l.GridSize.ToString(CultureInfo.InvariantCulture), l =>
            {
                if (!o.Values.TryGetValue(l.GridSize, out var v) || v.Length != l.GridSize * l.GridSize)
                    throw new ArgumentException($"Overlay '{o.Name}' has no {l.GridSize}x{l.GridSize} values.", nameof(options));
                return v.Select(x => float.IsFinite(x) ? x : 0f).ToArray();
            }),
        }).ToArray();

        var data = new
        {
            title = options.Title,
            model = options.ModelName,
            layer = options.LayerName,
            valueName = options.ClassValueName,
            rows = atlas.RowCount,
            classes = atlas.ClassNames,
            classScript = "classes/c{index}.js",
            levels,
            exampleNames,
            histograms = overlays,
            initialHistogram = options.InitialOverlay,
            labels = options.Labels && atlas.ClassCount > 0 ? new
            {
                minimumFraction = options.LabelOptions.MinimumFraction,
                minimumFontPixels = options.LabelOptions.MinimumFontPixels,
                minimumCellFonts = options.LabelOptions.MinimumCellFonts,
                maximumWidthCells = options.LabelOptions.MaximumWidthCells,
                sameClassSpacing = options.LabelOptions.SameClassSpacing,
                paddingFonts = AtlasLabels.PaddingFonts,
                heightFonts = AtlasLabels.HeightFonts,
            } : null,
            axes = options.Axes is { } axes ? new { left = axes.Left, right = axes.Right, horizontal = axes.Horizontal, vertical = axes.Vertical } : null,
            inverted = icons.InvertedCount,
            iconQuality = icons.InvertedCount == 0 ? null : icons.Quality() is var q ? new
            {
                icons = q.Icons, fidelity = q.Fidelity, plausibility = q.Plausibility, agreement = q.Agreement,
                classMatches = q.ClassMatches, classCompared = q.ClassCompared,
            } : null,
            iconNote = options.IconNote,
        };
        string json = JsonSerializer.Serialize(data);
        string html = Resource("viewer.html")
            .Replace("{{TITLE}}", System.Net.WebUtility.HtmlEncode(options.Title), StringComparison.Ordinal)
            .Replace("{{CSS}}", Resource("viewer.css"), StringComparison.Ordinal)
            .Replace("{{JS}}", Resource("viewer.js"), StringComparison.Ordinal)
            .Replace("{{DATA}}", json, StringComparison.Ordinal);
        File.WriteAllText(Path.Combine(directory, "index.html"), html, new UTF8Encoding(false));
    }

    private static object WriteLevel(AtlasLevel level, AtlasIcons icons, IReadOnlyList<string> classNames, string directory, int iconPx)
    {
        int cols = Math.Max(1, MaxSheetPixels / iconPx);
        var sheetIndex = WriteSheets(level, (x, y) => icons.Get(level.GridSize, x, y), directory, "level", iconPx, cols, out var sheets);
        var inverted = level.Cells.Select(c => icons.Inversion(level.GridSize, c.X, c.Y)).ToArray();
        // The example images of the grid's cells, for the switch between icons and examples, when any cell is inverted.
        int[]? exampleIndex = null;
        List<string>? exampleSheets = null;
        if (inverted.Any(i => i is not null))
            exampleIndex = WriteSheets(level, (x, y) => icons.GetExample(level.GridSize, x, y), directory, "examples", iconPx, cols, out exampleSheets);
        var cells = level.Cells.Select((c, j) => new object?[]
        {
            c.X, c.Y, c.Count, sheetIndex[j],
            c.TopClasses.Select(t => new object[] { t.ClassIndex, Round(t.Value) }).ToArray(),
            c.ExampleRows.ToArray(),
            // Inverted icon: [fidelity, plausibility or null, steps, warm-started (1/0), agreement or null, the cell's top class
            // index or null, the icon's top class index or null], else null.
            inverted[j] is { } i ? new object?[]
            {
                Round((float)i.Fidelity), i.Plausibility is double p ? Round((float)p) : null, i.Steps, i.WarmStarted ? 1 : 0,
                i.Agreement is double g ? Round((float)g) : null, ClassIndex(classNames, i.CellTopClass), ClassIndex(classNames, i.IconTopClass),
            } : null,
            exampleIndex?[j] ?? -1,
        }).ToArray();
        return new { size = level.GridSize, iconPx, sheetCols = cols, perSheet = cols * cols, sheets, exampleSheets, cells };
    }

    /// <summary>Writes the sprite sheets of a grid's cells' images; returns each cell's index in them (-1: none).</summary>
    private static int[] WriteSheets(AtlasLevel level, Func<int, int, byte[]?> imageOf, string directory, string prefix, int iconPx, int cols, out List<string> sheets)
    {
        int perSheet = cols * cols;
        var withIcon = level.Cells.Select((c, j) => (Cell: c, Index: j, Icon: imageOf(c.X, c.Y))).Where(t => t.Icon is not null).ToArray();
        var sheetIndex = new int[level.Cells.Count];
        Array.Fill(sheetIndex, -1);
        sheets = new List<string>();
        for (int s = 0; s * perSheet < withIcon.Length; s++)
        {
            var chunk = withIcon.Skip(s * perSheet).Take(perSheet).ToArray();
            int width = Math.Min(chunk.Length, cols) * iconPx, height = (chunk.Length + cols - 1) / cols * iconPx;
            using var sheet = new SKBitmap(new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Premul));
            using (var canvas = new SKCanvas(sheet))
            {
                canvas.Clear(SKColors.Transparent);
                for (int i = 0; i < chunk.Length; i++)
                {
                    using var bmp = AtlasIcons.Decode(chunk[i].Icon!, $"cell ({chunk[i].Cell.X}, {chunk[i].Cell.Y}) of the {level.GridSize} grid");
                    float left = i % cols * iconPx, top = i / cols * iconPx;
                    using var image = SKImage.FromBitmap(bmp);
                    canvas.DrawImage(image, new SKRect(left, top, left + iconPx, top + iconPx), new SKSamplingOptions(SKFilterMode.Linear, SKMipmapMode.Linear));
                    sheetIndex[chunk[i].Index] = s * perSheet + i;
                }
            }
            string name = $"icons/{prefix}-{level.GridSize.ToString(CultureInfo.InvariantCulture)}-{s.ToString(CultureInfo.InvariantCulture)}.png";
            File.WriteAllBytes(Path.Combine(directory, name), AtlasIcons.Encode(sheet));
            sheets.Add(name);
        }
        return sheetIndex;
    }

    private static int? ClassIndex(IReadOnlyList<string> classNames, string? name)
    {
        for (int k = 0; name is not null && k < classNames.Count; k++)
            if (classNames[k] == name)
                return k;
        return null;
    }

    private static double Round(float v) => float.IsFinite(v) ? double.Parse(v.ToString("G5", CultureInfo.InvariantCulture), CultureInfo.InvariantCulture) : 0;

    private static string Number(float v) => float.IsFinite(v) ? v.ToString("G5", CultureInfo.InvariantCulture) : "0";

    internal static string Resource(string name)
    {
        var asm = typeof(AtlasViewerWriter).Assembly;
        string full = asm.GetManifestResourceNames().FirstOrDefault(n => n.EndsWith("Viewer." + name, StringComparison.Ordinal))
            ?? throw new InvalidOperationException($"The viewer template '{name}' is missing from {asm.GetName().Name}.");
        using var s = asm.GetManifestResourceStream(full)!;
        using var r = new StreamReader(s, Encoding.UTF8);
        return r.ReadToEnd();
    }
}
