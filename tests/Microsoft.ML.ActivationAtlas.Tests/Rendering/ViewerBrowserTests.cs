using System.Globalization;
using Microsoft.ML.ActivationAtlas.Histogram;
using Microsoft.ML.ActivationAtlas.Rendering;
using Xunit.Abstractions;

namespace Microsoft.ML.ActivationAtlas.Tests.Rendering;

/// <summary>The HTML viewer in a real (headless) Chromium: loaded from disk, clicked, searched, zoomed, photographed.</summary>
public sealed class ViewerBrowserTests(CifarAtlasFixture fixture, ITestOutputHelper output) : IClassFixture<CifarAtlasFixture>
{
    /// <summary>Where the screenshots of the last run are kept for a person to look at.</summary>
    public static string ScreenshotFolder => Path.Combine(Path.GetTempPath(), "atlas-viewer-screenshots");

    [Fact]
    public async Task ClickingACellShowsItsCountTopClassesAndExamples()
    {
        var atlas = fixture.Atlas;
        var ml = new MLContext(1);
        var rows = fixture.Rows;
        string dir = Path.Combine(Path.GetTempPath(), "atlas-viewer-" + Guid.NewGuid().ToString("N"));
        var options = new AtlasViewerOptions
        {
            Title = "CIFAR-10 colour atlas",
            ModelName = "colour statistics",
            LayerName = "pixels 8x8",
            ImagePathOfRow = row => rows[row].Path,
        };
        var model = ml.Transforms.BinToGrid("GridCell", "Layout", 10, 20, 40).Fit(ml.Data.LoadFromEnumerable(rows));
        var cats = ml.Data.ConceptHistogram(model.Transform(ml.Data.LoadFromEnumerable(rows.Where(r => r.Label == "cat"))));
        var ships = ml.Data.ConceptHistogram(model.Transform(ml.Data.LoadFromEnumerable(rows.Where(r => r.Label == "ship"))));
        options.Overlays.Add(ViewerOverlay.FromDifference("cats minus ships", cats, ships));
        AtlasViewerWriter.Write(atlas, fixture.Icons, dir, options);
        Directory.CreateDirectory(ScreenshotFolder);
        try
        {
            Assert.True(File.Exists(Path.Combine(dir, "index.html")));
            string html = await File.ReadAllTextAsync(Path.Combine(dir, "index.html"));
            Assert.DoesNotContain("http://", html);
            Assert.DoesNotContain("https://", html);

            await using var chrome = await HeadlessChromium.StartAsync();
            await chrome.NavigateAsync(Path.Combine(dir, "index.html"));
            await chrome.WaitForAsync("window.atlasViewer && atlasViewer.levels.every(l => l.sheets.every(s => s.complete && s.naturalWidth > 0))");

            // Model and layer are named on the page.
            string subtitle = (await chrome.EvaluateAsync("document.getElementById('atlas-subtitle').textContent"))!.GetValue<string>();
            Assert.Contains("Model: colour statistics", subtitle);
            Assert.Contains("Layer: pixels 8x8", subtitle);
            Assert.Contains("1,000 images", subtitle);

            // Click the busiest cell of the grid on screen.
            int grid = (await chrome.EvaluateAsync("atlasViewer.gridSize()"))!.GetValue<int>();
            var cell = atlas.Level(grid).Cells.OrderByDescending(c => c.Count).First();
            var centre = (await chrome.EvaluateAsync($"atlasViewer.cellCenter({cell.X}, {cell.Y})"))!;
            await chrome.ClickAsync(centre["x"]!.GetValue<double>(), centre["y"]!.GetValue<double>());
            await chrome.WaitForAsync("!document.getElementById('cell-info').hidden");

            string Text(string id) => chrome.EvaluateAsync($"document.getElementById('{id}').textContent").Result!.GetValue<string>();
            Assert.Equal($"Cell ({cell.X}, {cell.Y}) of the {grid}×{grid} grid", Text("cell-title"));
            Assert.Equal($"Count: {cell.Count.ToString("N0", CultureInfo.InvariantCulture)} images", Text("cell-count"));
            var shownClasses = (await chrome.EvaluateAsync("[...document.querySelectorAll('#cell-classes tbody tr')].map(r => [r.cells[0].textContent, r.cells[1].textContent])"))!.AsArray();
            Assert.Equal(cell.TopClasses.Count, shownClasses.Count);
            for (int i = 0; i < shownClasses.Count; i++)
            {
                Assert.Equal(cell.TopClasses[i].Name, shownClasses[i]![0]!.GetValue<string>());
                Assert.Equal(cell.TopClasses[i].Value, double.Parse(shownClasses[i]![1]!.GetValue<string>(), CultureInfo.InvariantCulture), 0.006);
            }
            await chrome.WaitForAsync("[...document.querySelectorAll('#cell-examples img')].every(i => i.complete && i.naturalWidth > 0)");
            var captions = (await chrome.EvaluateAsync("[...document.querySelectorAll('#cell-examples figcaption')].map(c => c.textContent)"))!.AsArray();
            Assert.Equal(cell.ExampleRows.Select(r => Path.GetFileName(Path.GetDirectoryName(rows[r].Path)) + "/" + Path.GetFileName(rows[r].Path)), captions.Select(c => c!.GetValue<string>()));
            var shot = await chrome.ScreenshotAsync();
            await File.WriteAllBytesAsync(Path.Combine(ScreenshotFolder, "cell.png"), shot);
            output.WriteLine($"screenshot: {Path.Combine(ScreenshotFolder, "cell.png")}");

            // Class search switches to the per-class view.
            await chrome.EvaluateAsync("document.getElementById('class-input').focus()");
            await chrome.TypeAsync("Ship");
            await chrome.PressEnterAsync();
            await chrome.WaitForAsync("document.getElementById('class-message').textContent.includes('ship')");
            Assert.Equal("Per-class view: ship", Text("class-message"));
            int ship = atlas.ClassIndex("ship");
            string value = Text("cell-class-value");
            Assert.StartsWith("Attribution to “ship”: ", value);
            Assert.Equal(cell.MeanAttribution.Span[ship], double.Parse(value.Split(": ")[1], CultureInfo.InvariantCulture), 0.006);
            var classShot = await chrome.ScreenshotAsync();
            await File.WriteAllBytesAsync(Path.Combine(ScreenshotFolder, "class-ship.png"), classShot);
            Assert.NotEqual(shot, classShot);

            // Unknown classes are reported, not silently ignored.
            await chrome.EvaluateAsync("atlasViewer.selectClass('fireboat')");
            Assert.Equal("No class named “fireboat”", Text("class-message"));
            await chrome.EvaluateAsync("atlasViewer.clearClass()");

            // Scrolling in zooms through to a finer grid.
            await chrome.WheelAsync(centre["x"]!.GetValue<double>(), centre["y"]!.GetValue<double>(), -1200);
            await chrome.WaitForAsync($"atlasViewer.gridSize() > {grid}");
            int finer = (await chrome.EvaluateAsync("atlasViewer.gridSize()"))!.GetValue<int>();
            Assert.Contains($"grid {finer}×{finer}", Text("level-label"));
            var zoomShot = await chrome.ScreenshotAsync();
            await File.WriteAllBytesAsync(Path.Combine(ScreenshotFolder, "zoomed.png"), zoomShot);

            // The histogram overlay shows the cell's difference.
            await chrome.EvaluateAsync("(() => { const s = document.getElementById('histogram'); s.value = '0'; s.dispatchEvent(new Event('change')); })()");
            await chrome.EvaluateAsync("atlasViewer.zoom(0.01)");
            var c2 = (await chrome.EvaluateAsync($"atlasViewer.cellCenter({cell.X}, {cell.Y})"))!;
            await chrome.ClickAsync(c2["x"]!.GetValue<double>(), c2["y"]!.GetValue<double>());
            float diff = ConceptHistogram.Difference(cats, ships, grid)[cell.Y * grid + cell.X];
            string shown = Text("cell-histogram");
            Assert.StartsWith("cats minus ships: ", shown);
            Assert.Equal(diff, double.Parse(shown.Split(": ")[1], CultureInfo.InvariantCulture), Math.Max(1e-4, Math.Abs(diff) * 0.01));
            await File.WriteAllBytesAsync(Path.Combine(ScreenshotFolder, "histogram.png"), await chrome.ScreenshotAsync());
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    [Fact]
    public async Task LabelsNameTopClassesWithoutOverlapAndAxesAreCaptioned()
    {
        var atlas = fixture.Atlas;
        var rows = fixture.Rows;
        string dir = Path.Combine(Path.GetTempPath(), "atlas-viewer-" + Guid.NewGuid().ToString("N"));
        AtlasViewerWriter.Write(atlas, fixture.Icons, dir, new AtlasViewerOptions
        {
            Title = "cat vs dog",
            ImagePathOfRow = row => rows[row].Path,
            Axes = AtlasAxes.ClassComparison("cat", "dog"),
        });
        Directory.CreateDirectory(ScreenshotFolder);
        try
        {
            await using var chrome = await HeadlessChromium.StartAsync();
            await chrome.NavigateAsync(Path.Combine(dir, "index.html"));
            await chrome.WaitForAsync("window.atlasViewer && atlasViewer.levels.every(l => l.sheets.every(s => s.complete && s.naturalWidth > 0))");
            string Text(string id) => chrome.EvaluateAsync($"document.getElementById('{id}').textContent").Result!.GetValue<string>();
            Assert.Equal("← more dog", Text("axis-left"));
            Assert.Equal("more cat →", Text("axis-right"));
            Assert.Equal("1-D t-SNE of the activations", Text("axis-y"));

            async Task CheckLabels()
            {
                int grid = (await chrome.EvaluateAsync("atlasViewer.gridSize()"))!.GetValue<int>();
                var level = atlas.Level(grid);
                float max = level.Cells.Max(c => c.TopClasses[0].Value);
                var labels = (await chrome.EvaluateAsync("atlasViewer.labels()"))!.AsArray();
                Assert.True(labels.Count >= 3, $"{labels.Count} labels on the {grid} grid");
                var boxes = labels.Select(l => (X: l!["x"]!.GetValue<int>(), Y: l["y"]!.GetValue<int>(), Text: l["text"]!.GetValue<string>(),
                    Left: l["left"]!.GetValue<double>(), Top: l["top"]!.GetValue<double>(), Width: l["width"]!.GetValue<double>(), Height: l["height"]!.GetValue<double>())).ToArray();
                for (int i = 0; i < boxes.Length; i++)
                {
                    var cell = level.Find(boxes[i].X, boxes[i].Y)!;
                    Assert.Equal(cell.TopClasses[0].Name, boxes[i].Text);
                    Assert.True(cell.TopClasses[0].Value > 0.5f * max - 1e-4f);
                    for (int j = 0; j < i; j++)
                        Assert.False(boxes[i].Left < boxes[j].Left + boxes[j].Width && boxes[j].Left < boxes[i].Left + boxes[i].Width
                            && boxes[i].Top < boxes[j].Top + boxes[j].Height && boxes[j].Top < boxes[i].Top + boxes[i].Height, $"labels {i} and {j} overlap");
                }
            }
            await CheckLabels();
            await File.WriteAllBytesAsync(Path.Combine(ScreenshotFolder, "labels.png"), await chrome.ScreenshotAsync());
            await chrome.EvaluateAsync("atlasViewer.zoom(2.5)");
            await CheckLabels();
            await File.WriteAllBytesAsync(Path.Combine(ScreenshotFolder, "labels-zoomed.png"), await chrome.ScreenshotAsync());

            // The check box turns them off; the per-class view has none.
            await chrome.EvaluateAsync("document.getElementById('labels').click()");
            Assert.Equal(0, (await chrome.EvaluateAsync("atlasViewer.labels().length"))!.GetValue<int>());
            await chrome.EvaluateAsync("document.getElementById('labels').click()");
            Assert.NotEqual(0, (await chrome.EvaluateAsync("atlasViewer.labels().length"))!.GetValue<int>());
            await chrome.EvaluateAsync("atlasViewer.selectClass('cat')");
            Assert.Equal(0, (await chrome.EvaluateAsync("atlasViewer.labels().length"))!.GetValue<int>());
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    [Fact]
    public async Task TheViewerOpensOnTheHistogramWithItsRankedConcepts()
    {
        var atlas = fixture.Atlas;
        var rows = fixture.Rows;
        var ml = new MLContext(1);
        var model = ml.Transforms.BinToGrid("GridCell", "Layout", 10, 20, 40).Fit(ml.Data.LoadFromEnumerable(rows));
        var cats = ml.Data.ConceptHistogram(model.Transform(ml.Data.LoadFromEnumerable(rows.Where(r => r.Label == "cat"))));
        string[] vehicleNames = ["airplane", "automobile", "ship", "truck"];
        var vehicles = ml.Data.ConceptHistogram(model.Transform(ml.Data.LoadFromEnumerable(rows.Where(r => vehicleNames.Contains(r.Label)))));
        var animals = ml.Data.ConceptHistogram(model.Transform(ml.Data.LoadFromEnumerable(rows.Where(r => !vehicleNames.Contains(r.Label)))));
        string dir = Path.Combine(Path.GetTempPath(), "atlas-viewer-" + Guid.NewGuid().ToString("N"));
        var options = new AtlasViewerOptions { Title = "cats on the colour atlas", ImagePathOfRow = row => rows[row].Path, InitialOverlay = 0 };
        options.Overlays.Add(ViewerOverlay.FromShares("cats (share)", cats));
        options.Overlays.Add(ViewerOverlay.FromComparison("vehicles vs animals", vehicles, animals));
        AtlasViewerWriter.Write(atlas, fixture.Icons, dir, options);
        Directory.CreateDirectory(ScreenshotFolder);
        try
        {
            await using var chrome = await HeadlessChromium.StartAsync();
            await chrome.NavigateAsync(Path.Combine(dir, "index.html"));
            await chrome.WaitForAsync("window.atlasViewer && atlasViewer.levels.every(l => l.sheets.every(s => s.complete && s.naturalWidth > 0))");
            // Open on the histogram: selected, listed, largest share first.
            Assert.Equal("0", (await chrome.EvaluateAsync("document.getElementById('histogram').value"))!.GetValue<string>());
            Assert.False((await chrome.EvaluateAsync("document.getElementById('concepts').hidden"))!.GetValue<bool>());
            int grid = (await chrome.EvaluateAsync("atlasViewer.gridSize()"))!.GetValue<int>();
            var listed = (await chrome.EvaluateAsync("[...document.querySelectorAll('#concepts-list li')].map(li => li.dataset.cell)"))!.AsArray()
                .Select(n => n!.GetValue<string>().Split(',').Select(int.Parse).ToArray()).ToArray();
            Assert.Equal(10, listed.Length);
            var counts = listed.Select(c => cats.Count(grid, c[0], c[1])).ToArray();
            Assert.Equal(counts.OrderByDescending(c => c), counts);
            Assert.Equal(cats.Counts(grid).ToArray().Max(), counts[0]);
            string first = (await chrome.EvaluateAsync("document.querySelector('#concepts-list li .value').textContent"))!.GetValue<string>();
            Assert.StartsWith((counts[0] * 100.0 / cats.Total).ToString(counts[0] * 10 >= cats.Total ? "F0" : "F1", CultureInfo.InvariantCulture) + "% of the images", first);
            await File.WriteAllBytesAsync(Path.Combine(ScreenshotFolder, "histogram-open.png"), await chrome.ScreenshotAsync());

            // The comparison lists only significant cells, over-represented ones with positive ratios first.
            await chrome.EvaluateAsync("atlasViewer.showHistogram(1)");
            var comparison = HistogramComparison.Compare(vehicles, animals, grid);
            var shown = (await chrome.EvaluateAsync("[...document.querySelectorAll('#concepts-list li')].map(li => li.dataset.cell)"))!.AsArray()
                .Select(n => n!.GetValue<string>()).ToArray();
            var significant = comparison.Significant.Select(c => $"{c.X},{c.Y}").ToHashSet();
            Assert.NotEmpty(shown);
            Assert.All(shown, c => Assert.Contains(c, significant));
            Assert.Equal(Math.Min(10, comparison.OverRepresented(100).Count) + Math.Min(10, comparison.UnderRepresented(100).Count), shown.Length);
            // Labels stay only on the cells the comparison shows in full.
            var labelled = (await chrome.EvaluateAsync("atlasViewer.labels().map(l => l.x + ',' + l.y)"))!.AsArray().Select(n => n!.GetValue<string>()).ToArray();
            Assert.All(labelled, c => Assert.Contains(c, significant));
            await File.WriteAllBytesAsync(Path.Combine(ScreenshotFolder, "histogram-compare.png"), await chrome.ScreenshotAsync());
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }
}
