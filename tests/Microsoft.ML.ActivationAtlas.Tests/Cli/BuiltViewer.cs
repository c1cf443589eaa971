using System.Globalization;
using System.Text.Json;
using Microsoft.ML.ActivationAtlas.Tests.Rendering;

namespace Microsoft.ML.ActivationAtlas.Tests.Cli;

/// <summary>
/// Opens the viewer (<c>index.html</c>) of an atlas folder written by the <c>atlas</c> tool in headless Chromium and
/// checks what it shows against the folder's <c>atlas.json</c>: model, layer, image count and grids; and for cells of
/// the grid on screen, clicked one by one, their count, top classes with values, and example images.
/// </summary>
internal static class BuiltViewer
{
    /// <summary>A clicked cell: its position, and the top class the viewer named (null when none).</summary>
    public readonly record struct ShownCell(int X, int Y, int GridSize, string? TopClass);

    /// <param name="dir">The atlas folder.</param>
    /// <param name="caption">The caption the viewer should give example row r of atlas.json, or null to check captions with <paramref name="captionCheck"/>.</param>
    /// <param name="captionCheck">Checks one shown caption (when <paramref name="caption"/> is null).</param>
    /// <param name="maxCells">Cells clicked (the most populated first).</param>
    public static async Task<List<ShownCell>> CheckAsync(string dir, Func<int, string>? caption, Action<string>? captionCheck = null, int maxCells = 6)
    {
        using var doc = JsonDocument.Parse(await File.ReadAllTextAsync(Path.Combine(dir, "atlas.json")));
        var root = doc.RootElement;
        await using var chrome = await HeadlessChromium.StartAsync();
        await chrome.NavigateAsync(Path.Combine(dir, "index.html"));
        await chrome.WaitForAsync("window.atlasViewer && atlasViewer.levels.every(l => l.sheets.every(s => s.complete && s.naturalWidth > 0))");
        async Task<string> Text(string id) => (await chrome.EvaluateAsync($"document.getElementById('{id}').textContent"))!.GetValue<string>();

        var sizes = root.GetProperty("grids").EnumerateArray().Select(g => g.GetProperty("size").GetInt32()).ToArray();
        string subtitle = await Text("atlas-subtitle");
        Assert.Contains($"Model: {root.GetProperty("model").GetString()}", subtitle);
        Assert.Contains($"Layer: {root.GetProperty("layer").GetString()}", subtitle);
        Assert.Contains($"{root.GetProperty("rows").GetInt32().ToString("N0", CultureInfo.InvariantCulture)} images", subtitle);
        Assert.Contains($"grids {string.Join(", ", sizes)}", subtitle);

        int grid = (await chrome.EvaluateAsync("atlasViewer.gridSize()"))!.GetValue<int>();
        Assert.Contains(grid, sizes);
        var cells = root.GetProperty("grids").EnumerateArray().Single(g => g.GetProperty("size").GetInt32() == grid).GetProperty("cells")
            .EnumerateArray().OrderByDescending(c => c.GetProperty("n").GetInt32()).Take(maxCells).ToArray();
        var shown = new List<ShownCell>();
        foreach (var cell in cells)
        {
            int x = cell.GetProperty("x").GetInt32(), y = cell.GetProperty("y").GetInt32();
            string title = $"Cell ({x}, {y}) of the {grid}×{grid} grid";
            var centre = (await chrome.EvaluateAsync($"atlasViewer.cellCenter({x}, {y})"))!;
            await chrome.ClickAsync(centre["x"]!.GetValue<double>(), centre["y"]!.GetValue<double>());
            await chrome.WaitForAsync($"!document.getElementById('cell-info').hidden && document.getElementById('cell-title').textContent === {JsonSerializer.Serialize(title)}");
            int n = cell.GetProperty("n").GetInt32();
            Assert.Equal($"Count: {n.ToString("N0", CultureInfo.InvariantCulture)} image{(n == 1 ? "" : "s")}", await Text("cell-count"));

            var top = cell.GetProperty("top").EnumerateArray().ToArray();
            var rows = (await chrome.EvaluateAsync("[...document.querySelectorAll('#cell-classes tbody tr')].map(r => [r.cells[0].textContent, r.cells[1].textContent])"))!.AsArray();
            Assert.Equal(top.Length, rows.Count);
            for (int i = 0; i < top.Length; i++)
            {
                Assert.Equal(top[i].GetProperty("class").GetString(), rows[i]![0]!.GetValue<string>());
                Assert.Equal(top[i].GetProperty("value").GetDouble(), double.Parse(rows[i]![1]!.GetValue<string>(), CultureInfo.InvariantCulture), 0.006);
            }

            await chrome.WaitForAsync("[...document.querySelectorAll('#cell-examples img')].every(i => i.complete && i.naturalWidth > 0)");
            var captions = (await chrome.EvaluateAsync("[...document.querySelectorAll('#cell-examples figcaption')].map(c => c.textContent)"))!.AsArray()
                .Select(c => c!.GetValue<string>()).ToArray();
            var examples = cell.GetProperty("examples").EnumerateArray().Select(e => e.GetInt32()).ToArray();
            Assert.Equal(examples.Length, captions.Length);
            Assert.NotEmpty(captions);
            if (caption is not null)
                Assert.Equal(examples.Select(caption), captions);
            else
                Assert.All(captions, c => captionCheck!(c));
            shown.Add(new ShownCell(x, y, grid, rows.Count > 0 ? rows[0]![0]!.GetValue<string>() : null));
        }
        return shown;
    }
}
