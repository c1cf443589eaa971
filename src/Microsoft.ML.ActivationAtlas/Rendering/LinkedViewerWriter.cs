using System.Text;

namespace Microsoft.ML.ActivationAtlas.Rendering;

/// <summary>
/// Writes the page that links the atlases of several layers: <c>index.html</c> shows each layer's own viewer
/// (<see cref="AtlasViewerWriter"/>, in its sub-folder) in a frame behind a layer switch, marks where the images of a
/// cell selected in one layer landed in the others (with counts) and keeps a chosen class across layers.
/// </summary>
internal static class LinkedViewerWriter
{
    /// <summary>Writes <c>index.html</c> into <paramref name="directory"/> with <paramref name="json"/>, the linked atlas's <c>atlas.json</c> document.</summary>
    public static void Write(string directory, string title, string json)
    {
        string html = AtlasViewerWriter.Resource("linked.html")
            .Replace("{{TITLE}}", System.Net.WebUtility.HtmlEncode(title), StringComparison.Ordinal)
            .Replace("{{DATA}}", json.Replace("</", "<\\/", StringComparison.Ordinal), StringComparison.Ordinal);
        AtomicOutput.WriteFile(Path.Combine(directory, "index.html"), s =>
        {
            using var w = new StreamWriter(s, new UTF8Encoding(false), leaveOpen: true);
            w.Write(html);
        });
    }

    /// <summary>Writes a page showing the viewers in <paramref name="folders"/> (relative to <paramref name="directory"/>) side by side.</summary>
    public static void WriteSideBySide(string directory, string title, IReadOnlyList<(string Name, string Folder)> folders)
    {
        var sb = new StringBuilder();
        sb.Append("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>").Append(Encode(title)).Append("</title>\n<style>\n")
          .Append("html, body { margin: 0; height: 100%; font: 14px system-ui, sans-serif; }\nbody { display: flex; flex-direction: column; }\n")
          .Append("h1 { font-size: 15px; margin: 6px 12px; }\n#side { flex: 1; display: flex; min-height: 0; }\n")
          .Append("#side section { flex: 1; display: flex; flex-direction: column; border-left: 1px solid #ddd; min-width: 0; }\n")
          .Append("#side h2 { font-size: 13px; margin: 4px 8px; }\n#side iframe { flex: 1; border: 0; width: 100%; }\n</style>\n</head>\n<body>\n<h1>")
          .Append(Encode(title)).Append("</h1>\n<div id=\"side\">\n");
        foreach (var (name, folder) in folders)
            sb.Append("<section><h2>").Append(Encode(name)).Append("</h2><iframe src=\"").Append(Encode(folder + "/index.html"))
              .Append("\" title=\"").Append(Encode(name)).Append("\"></iframe></section>\n");
        // A class chosen in one viewer is chosen in the others (the viewers post it to this page).
        sb.Append("</div>\n<script>\n(function () {\n  'use strict';\n  let current = null;\n")
          .Append("  const frames = [...document.querySelectorAll('#side iframe')];\n")
          .Append("  window.addEventListener('message', e => {\n    const m = e.data;\n")
          .Append("    if (!m || !m.atlasViewer || m.type !== 'class' || m.name === current) return;\n    current = m.name;\n")
          .Append("    for (const f of frames) if (f.contentWindow !== e.source) f.contentWindow.postMessage({ atlasLinked: true, type: 'class', name: m.name }, '*');\n")
          .Append("  });\n})();\n</script>\n</body>\n</html>\n");
        AtomicOutput.WriteFile(Path.Combine(directory, "index.html"), s =>
        {
            using var w = new StreamWriter(s, new UTF8Encoding(false), leaveOpen: true);
            w.Write(sb.ToString());
        });
    }

    private static string Encode(string text) => System.Net.WebUtility.HtmlEncode(text);
}
