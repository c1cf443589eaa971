using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;
using Microsoft.ML.ActivationAtlas.Building;
using Microsoft.ML.ActivationAtlas.Extraction;
using Microsoft.ML.ActivationAtlas.Rendering;
using SkiaSharp;

namespace Microsoft.ML.ActivationAtlas.Attacks;

/// <summary>
/// Writes a patch attack into a new folder: <c>attack.json</c>, <c>index.html</c>, <c>contact.png</c> (the most
/// effective patches at their best placement on example images, each captioned with the head's answer) and
/// <c>patches/</c> (the icons pasted).
/// </summary>
internal static class PatchAttackWriter
{
    public const string JsonFile = "attack.json";
    public const string HtmlFile = "index.html";
    public const string ContactFile = "contact.png";

    /// <summary>Icon patches shown in the contact sheet (the most effective at their best placement), plus the noise row.</summary>
    private const int SheetPatches = 6;

    /// <summary>Example images per row of the contact sheet.</summary>
    private const int SheetImages = 6;

    public static void Write(PatchAttackResult result, BuiltAtlas atlas, (int Width, int Height) input, PatchAttackOptions options, string outputFolder)
    {
        var order = Enumerable.Range(0, result.Patches.Count)
            .OrderByDescending(p => result.Patches[p].Best.ToTarget.Count).ThenByDescending(p => result.Patches[p].Fixed.ToTarget.Count).ThenBy(p => p).ToArray();
        AtomicOutput.WriteDirectory(outputFolder, overwrite: false, dir =>
        {
            Directory.CreateDirectory(Path.Combine(dir, "patches"));
            for (int p = 0; p < result.Patches.Count; p++)
                File.WriteAllBytes(Path.Combine(dir, PatchFile(p)), result.Patches[p].Icon!);
            File.WriteAllText(Path.Combine(dir, JsonFile), Json(result, atlas));
            WriteContactSheet(result, order, input, options.Seed, Path.Combine(dir, ContactFile));
            File.WriteAllText(Path.Combine(dir, HtmlFile), Html(result, atlas, order));
        });
    }

    private static string PatchFile(int p) => $"patches/{p:D2}.png";

    private static object Rate(Proportion r) => new { count = r.Count, total = r.Total, rate = r.Rate, low = r.Low, high = r.High };

    private static object PatchJson(PatchAttackPatch p, int index) => new
    {
        kind = p.IsNoise ? "noise" : "icon",
        icon = p.IsNoise ? null : PatchFile(index),
        cell = p.Cell is { } c ? new { grid = c.GridSize, x = c.X, y = c.Y } : null,
        cellImages = p.CellCount,
        targetMinusSource = p.TargetPush,
        @fixed = new { placement = p.Fixed.Placement.ToString(), toTarget = Rate(p.Fixed.ToTarget), leftSource = Rate(p.Fixed.LeftSource) },
        best = new { placement = p.Best.Placement.ToString(), toTarget = Rate(p.Best.ToTarget), leftSource = Rate(p.Best.LeftSource) },
        placements = p.Placements.Select(x => new
        {
            size = x.Placement.Size,
            corner = x.Placement.Corner.ToString(),
            toTarget = Rate(x.ToTarget),
            leftSource = Rate(x.LeftSource),
        }),
    };

    private static string Json(PatchAttackResult r, BuiltAtlas atlas) => JsonSerializer.Serialize(new
    {
        atlas = Path.GetFullPath(atlas.Folder),
        model = atlas.ModelName,
        layer = atlas.LayerName,
        icons = r.IconKind.ToString(),
        classifier = "the atlas's trained linear head on the layer's spatial mean",
        source = r.SourceClass,
        target = r.TargetClass,
        images = r.Images.Count,
        skipped = r.SkippedImages,
        rankedGrid = r.GridSize,
        fixedPlacement = r.FixedPlacement.ToString(),
        clean = new { toTarget = Rate(r.CleanTarget), source = Rate(r.CleanSource) },
        patches = r.Patches.Select(PatchJson),
        noise = PatchJson(r.Noise, -1),
        confidence = "95% Wilson score intervals; the best placement is chosen on the same images, so its rate is optimistic",
    }, new JsonSerializerOptions { WriteIndented = true });

    private static string Html(PatchAttackResult r, BuiltAtlas atlas, int[] order)
    {
        static string E(string s) => WebUtility.HtmlEncode(s);
        var sb = new StringBuilder();
        string title = $"Patch attack: {r.SourceClass} \u2192 {r.TargetClass}";
        sb.Append("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>").Append(E(title)).Append("</title>\n<style>\n")
            .Append("body{font-family:system-ui,sans-serif;margin:1.5em;background:#fafafa;color:#222;max-width:1200px}\n")
            .Append("table{border-collapse:collapse;background:#fff}td,th{border:1px solid #ddd;padding:4px 8px;text-align:left;font-size:14px}\n")
            .Append("th{background:#f0f0f0}td.num{text-align:right;font-variant-numeric:tabular-nums}tr.noise td{background:#f4f4ff}\n")
            .Append("img.icon{width:64px;height:64px;image-rendering:pixelated;display:block}.ci{color:#777;font-size:12px}\n")
            .Append("img.sheet{max-width:100%;border:1px solid #ddd}</style></head><body>\n")
            .Append("<h1>").Append(E(title)).Append("</h1>\n<p>")
            .Append(E($"{r.Images.Count:N0} images of “{r.SourceClass}”, classified by the trained head of the atlas of {atlas.ModelName} {atlas.LayerName} " +
                $"({(r.IconKind == AtlasIconKind.Inversion ? "feature-inversion" : "example-image")} icons). Without a patch {P(r.CleanSource)} are classified “{r.SourceClass}” and {P(r.CleanTarget)} “{r.TargetClass}”. "))
            .Append(E(r.GridSize > 0
                ? $"Patches: the icons of the {r.Patches.Count} cells of the {r.GridSize}x{r.GridSize} grid whose class values push hardest towards “{r.TargetClass}” (mean attribution to {r.TargetClass} minus {r.SourceClass}), "
                : $"Patches: the icons of the {r.Patches.Count} cells named, "))
            .Append(E($"pasted at {string.Join(", ", r.Placements.Select(p => p.Size).Distinct().Select(s => s.ToString("0.##", CultureInfo.InvariantCulture)))} of the image side in the corners {string.Join(", ", r.Placements.Select(p => p.Corner).Distinct())}; the control is uniform random noise of the same sizes, new for every image. " +
                $"Rates are images classified “{r.TargetClass}” with the patch, with 95% Wilson intervals; the fixed placement is {r.FixedPlacement}; " +
                "the best placement is chosen on the same images, so its rate is optimistic (compare it with the noise's best)."))
            .Append("</p>\n<table>\n<tr><th>#</th><th>patch</th><th>cell</th><th>push</th><th>fixed: \u2192 ").Append(E(r.TargetClass))
            .Append("</th><th>best: \u2192 ").Append(E(r.TargetClass)).Append("</th><th>best placement</th><th>fixed: leaves ").Append(E(r.SourceClass))
            .Append("</th><th>best: leaves ").Append(E(r.SourceClass)).Append("</th></tr>\n");
        void Row(PatchAttackPatch p, int index, string rank)
        {
            sb.Append(p.IsNoise ? "<tr class=\"noise\">" : "<tr>").Append("<td>").Append(rank).Append("</td><td>")
                .Append(p.IsNoise ? "noise (control)" : $"<img class=\"icon\" src=\"{PatchFile(index)}\" alt=\"icon of cell {p.Cell}\">").Append("</td><td>")
                .Append(p.IsNoise ? "" : E($"{p.Cell} ({p.CellCount} images)")).Append("</td><td class=\"num\">")
                .Append(p.IsNoise ? "" : p.TargetPush.ToString("0.###", CultureInfo.InvariantCulture)).Append("</td>");
            Cell(p.Fixed.ToTarget);
            Cell(p.Best.ToTarget);
            sb.Append("<td>").Append(E(p.Best.Placement.ToString())).Append("</td>");
            Cell(p.Fixed.LeftSource);
            Cell(p.Best.LeftSource);
            sb.Append("</tr>\n");
        }
        void Cell(Proportion x) => sb.Append("<td class=\"num\">").Append(P(x)).Append(" <span class=\"ci\">[")
            .Append((100 * x.Low).ToString("0.0", CultureInfo.InvariantCulture)).Append(", ").Append((100 * x.High).ToString("0.0", CultureInfo.InvariantCulture)).Append("]</span></td>");
        for (int i = 0; i < order.Length; i++)
            Row(r.Patches[order[i]], order[i], (i + 1).ToString(CultureInfo.InvariantCulture));
        Row(r.Noise, -1, "");
        sb.Append("</table>\n<h2>The most effective patches on example images</h2>\n<p>Each row: a patch at its best placement on the first images attacked, ")
            .Append(E($"captioned with the head's answer (red: “{r.TargetClass}”). The last row is the noise control."))
            .Append("</p>\n<img class=\"sheet\" src=\"").Append(ContactFile).Append("\" alt=\"contact sheet\">\n</body></html>\n");
        return sb.ToString();
    }

    private static string P(Proportion x) => (100 * x.Rate).ToString("0.0", CultureInfo.InvariantCulture) + "%";

    /// <summary>Rows: the most effective icon patches and the noise control, each at its best placement on the first images.</summary>
    private static void WriteContactSheet(PatchAttackResult r, int[] order, (int Width, int Height) input, int seed, string path)
    {
        const int tile = 112, pad = 8, header = 20, caption = 18;
        var rows = order.Take(SheetPatches).Append(r.Patches.Count).ToArray();
        int images = Math.Min(SheetImages, r.Images.Count);
        int width = pad + tile + pad + images * (tile + pad), rowHeight = header + tile + caption + pad;
        var (w, h) = input;
        int side = Math.Min(w, h);
        var clean = new byte[images][];
        for (int i = 0; i < images; i++)
        {
            string? error = ImageFileDecoder.DecodeToSize(r.Images[i], w, h, out var bmp);
            if (error is not null)
                throw new InvalidDataException(error);
            using (bmp)
                clean[i] = PatchAttacker.Compact(bmp!);
        }
        using var sheet = new SKBitmap(new SKImageInfo(width, pad + rows.Length * rowHeight, SKColorType.Rgba8888, SKAlphaType.Premul));
        using var canvas = new SKCanvas(sheet);
        canvas.Clear(SKColors.White);
        using var font = new SKFont(SKTypeface.Default, 13);
        using var bold = new SKFont(SKTypeface.FromFamilyName(null, SKFontStyle.Bold), 13);
        using var ink = new SKPaint { Color = new SKColor(0x22, 0x22, 0x22), IsAntialias = true };
        using var red = new SKPaint { Color = new SKColor(0xd0, 0x10, 0x10), IsAntialias = true };
        var sampling = new SKSamplingOptions(SKFilterMode.Linear, SKMipmapMode.Linear);
        var pixels = new byte[w * h * 4];
        var noise = new byte[w * h * 4];
        for (int row = 0; row < rows.Length; row++)
        {
            int p = rows[row];
            var patch = p < r.Patches.Count ? r.Patches[p] : r.Noise;
            int placement = IndexOf(patch.Placements, patch.Best);
            var where = patch.Best.Placement;
            int edge = Math.Max(1, (int)Math.Round(where.Size * side));
            float top = pad + row * rowHeight;
            string label = (patch.IsNoise ? "noise (control)" : $"cell {patch.Cell}") +
                $" \u00b7 best at {where}: {patch.Best.ToTarget} \u2192 {r.TargetClass} \u00b7 fixed {patch.Fixed.Placement}: {patch.Fixed.ToTarget}";
            canvas.DrawText(label, pad, top + 14, bold, ink);
            float y0 = top + header;
            byte[]? iconPixels = null;
            if (!patch.IsNoise)
            {
                using var icon = AtlasIcons.Decode(patch.Icon!, $"cell {patch.Cell}");
                using var image = SKImage.FromBitmap(icon);
                canvas.DrawImage(image, SKRect.Create(pad, y0, tile, tile), sampling);
                using var resized = icon.Resize(new SKImageInfo(edge, edge, SKColorType.Bgra8888, SKAlphaType.Unpremul), sampling)
                    ?? throw new InvalidDataException($"The icon of cell {patch.Cell} could not be resized.");
                iconPixels = PatchAttacker.Compact(resized);
            }
            else
                canvas.DrawText("noise", pad + 30, y0 + tile / 2f, font, ink);
            for (int i = 0; i < images; i++)
            {
                clean[i].CopyTo(pixels, 0);
                PatchAttacker.Paste(pixels, w, h, iconPixels ?? PatchAttacker.Noise(noise, edge, seed, i, placement), edge, where.Corner);
                using var bmp = new SKBitmap(new SKImageInfo(w, h, SKColorType.Bgra8888, SKAlphaType.Unpremul));
                System.Runtime.InteropServices.Marshal.Copy(pixels, 0, bmp.GetPixels(), pixels.Length);
                using var image = SKImage.FromBitmap(bmp);
                float x = pad + tile + pad + i * (tile + pad);
                canvas.DrawImage(image, SKRect.Create(x, y0, tile, tile), sampling);
                int k = r.Predicted(i, p, placement);
                string answer = r.ClassNames[k];
                canvas.DrawText(answer, x, y0 + tile + 14, answer == r.TargetClass ? bold : font, answer == r.TargetClass ? red : ink);
            }
        }
        AtomicOutput.WriteFile(path, s =>
        {
            using var image = SKImage.FromBitmap(sheet);
            using var data = image.Encode(SKEncodedImageFormat.Png, 100);
            data.SaveTo(s);
        });
    }

    private static int IndexOf(IReadOnlyList<PatchPlacementResult> placements, PatchPlacementResult x)
    {
        for (int i = 0; i < placements.Count; i++)
            if (ReferenceEquals(placements[i], x))
                return i;
        throw new InvalidOperationException("The best placement is not one of the patch's placements.");
    }
}
