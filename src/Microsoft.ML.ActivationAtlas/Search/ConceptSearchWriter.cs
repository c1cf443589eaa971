using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;
using Microsoft.ML.ActivationAtlas.Rendering;
using SkiaSharp;

namespace Microsoft.ML.ActivationAtlas.Search;

/// <summary>
/// Writes a concept search into a new folder: <c>index.html</c> (a gallery of the matches with the matching region
/// outlined), <c>search.json</c> and <c>images/</c> (copies of the matched files, so the folder stands alone).
/// </summary>
internal static class ConceptSearchWriter
{
    public const string HtmlFile = "index.html";
    public const string JsonFile = "search.json";

    public static void Write(ConceptSearchResult result, string atlasFolder, string imageRoot, IReadOnlyList<string> unreadable, string outputFolder)
    {
        AtomicOutput.WriteDirectory(outputFolder, overwrite: false, dir =>
        {
            Directory.CreateDirectory(Path.Combine(dir, "images"));
            var copies = new string[result.Matches.Count];
            var sizes = new (int W, int H)[result.Matches.Count];
            for (int i = 0; i < result.Matches.Count; i++)
            {
                var m = result.Matches[i];
                copies[i] = $"images/{m.Rank:D4}{Path.GetExtension(m.ImagePath).ToLowerInvariant()}";
                File.Copy(m.ImagePath, Path.Combine(dir, copies[i]));
                using var codec = SKCodec.Create(m.ImagePath);
                sizes[i] = codec is null ? (1, 1) : (codec.Info.Width, codec.Info.Height);
            }
            File.WriteAllText(Path.Combine(dir, JsonFile), JsonSerializer.Serialize(new
            {
                atlas = Path.GetFullPath(atlasFolder),
                images = imageRoot,
                query = new { kind = result.Query.Kind, description = result.Query.Description },
                layer = result.LayerName,
                grid = new { height = result.GridHeight, width = result.GridWidth },
                imagesSearched = result.ImagesSearched,
                unreadable,
                skipped = result.SkippedImages,
                seconds = result.Seconds,
                imagesPerSecond = result.ImagesPerSecond,
                results = result.Matches.Select((m, i) => new
                {
                    rank = m.Rank,
                    score = m.Score,
                    path = m.ImagePath,
                    copy = copies[i],
                    label = m.Label,
                    position = new { y = m.PositionY, x = m.PositionX },
                    region = new { x = m.Region.X, y = m.Region.Y, width = m.Region.Width, height = m.Region.Height },
                }),
            }, new JsonSerializerOptions { WriteIndented = true }));
            File.WriteAllText(Path.Combine(dir, HtmlFile), Html(result, copies, sizes, imageRoot));
        });
    }

    private static string Html(ConceptSearchResult result, string[] copies, (int W, int H)[] sizes, string imageRoot)
    {
        static string E(string s) => WebUtility.HtmlEncode(s);
        static string P(double v) => v.ToString("0.###", CultureInfo.InvariantCulture);
        var sb = new StringBuilder();
        sb.Append("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Search: ").Append(E(result.Query.Description)).Append("</title>\n<style>\n")
            .Append("body{font-family:system-ui,sans-serif;margin:1.5em;background:#fafafa;color:#222}\n")
            .Append(".grid{display:flex;flex-wrap:wrap;gap:14px}\n")
            .Append("figure{margin:0;width:160px;background:#fff;border:1px solid #ddd;padding:6px}\n")
            .Append(".frame{position:relative;display:block;width:160px;line-height:0}\n")
            .Append(".frame img{width:100%;image-rendering:pixelated}\n")
            .Append(".box{position:absolute;border:2px solid #ff2d2d;box-shadow:0 0 0 1px #fff;box-sizing:border-box}\n")
            .Append("figcaption{font-size:12px;margin-top:4px;overflow-wrap:anywhere}\n.pos{color:#777}\n</style></head><body>\n")
            .Append("<h1>").Append(E(result.Query.Description)).Append("</h1>\n<p>Layer ").Append(E(result.LayerName))
            .Append($" ({result.GridHeight}x{result.GridWidth} positions); the {result.Matches.Count} best of {result.ImagesSearched:N0} images by the cosine of their best-matching position, which is outlined in red (the part of the image that position sees most directly). Click an image for the full-size file.")
            .Append(result.SkippedImages.Count > 0 ? $" {result.SkippedImages.Count} unreadable images were skipped." : "").Append("</p>\n<div class=\"grid\">\n");
        for (int i = 0; i < result.Matches.Count; i++)
        {
            var m = result.Matches[i];
            var (w, h) = sizes[i];
            // Image folders often repeat file names across class sub-folders (cat/0001.jpg, dog/0001.jpg): show the path
            // below the searched folder, and link the full-size copy.
            string name = Path.GetRelativePath(imageRoot, m.ImagePath).Replace('\\', '/');
            if (name.StartsWith("..", StringComparison.Ordinal))
                name = Path.GetFileName(m.ImagePath);
            sb.Append("<figure><a class=\"frame\" href=\"").Append(copies[i]).Append("\" title=\"").Append(E(m.ImagePath)).Append("\"><img src=\"").Append(copies[i]).Append("\" alt=\"").Append(E(name)).Append("\">")
                .Append("<div class=\"box\" style=\"left:").Append(P(100.0 * m.Region.X / w)).Append("%;top:").Append(P(100.0 * m.Region.Y / h))
                .Append("%;width:").Append(P(100.0 * m.Region.Width / w)).Append("%;height:").Append(P(100.0 * m.Region.Height / h)).Append("%\"></div></a>")
                .Append("<figcaption><b>#").Append(m.Rank).Append("</b> · cosine ").Append(m.Score.ToString("0.000", CultureInfo.InvariantCulture))
                .Append(m.Label.Length > 0 ? " · <b>" + E(m.Label) + "</b>" : "").Append("<br>").Append(E(name))
                .Append($"<br><span class=\"pos\">position row {m.PositionY}, column {m.PositionX}</span></figcaption></figure>\n");
        }
        return sb.Append("</div>\n</body></html>\n").ToString();
    }
}
