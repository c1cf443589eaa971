using System.Globalization;
using System.Net;
using System.Text.Json;
using Microsoft.ML.ActivationAtlas.Building;
using Microsoft.ML.ActivationAtlas.Histogram;
using Microsoft.ML.ActivationAtlas.Inversion;
using SkiaSharp;

namespace Microsoft.ML.ActivationAtlas.Rendering;

/// <summary>
/// Draws an <see cref="ActivationGrid"/> of an image file: the image with the network's part outlined, the network's
/// input beside the icons in the layer's grid (as in Building Blocks), a per-class attribution heat map over the grid,
/// an HTML page (hover a position for its top classes and atlas cell) and, with an atlas, the atlas viewer with the
/// image's cells highlighted.
/// </summary>
internal static class ActivationGridWriter
{
    private const int Gap = 16;

    /// <summary>Checks the output folder, builds the grid and writes it.</summary>
    public static ActivationGrid Build(MLContext ml, string imagePath, string outputFolder, ActivationGridOptions options,
        IProgress<AtlasBuildProgress>? progress, CancellationToken ct)
    {
        ArgumentException.ThrowIfNullOrEmpty(outputFolder);
        AtlasFolder.EnsureFree(outputFolder);
        var grid = ActivationGridBuilder.Build(ml, imagePath, options, progress, ct);
        ct.ThrowIfCancellationRequested();
        var stage = new StageReporter(progress).Start("outputs");
        Write(grid, outputFolder);
        stage.Done();
        return grid;
    }

    public static void Write(ActivationGrid grid, string outputFolder)
    {
        if (grid.ImagePath is null)
            throw new InvalidOperationException("Only a grid made from an image file can be written (mlContext.Transforms.ActivationGrid(imagePath, options)).");
        AtomicOutput.WriteDirectory(outputFolder, overwrite: false, dir =>
        {
            int cell = grid.Icons.FirstOrDefault(i => i is not null)?.Size ?? 64;
            using var file = SKBitmap.Decode(grid.ImagePath)
                ?? throw new InvalidDataException($"The image file '{grid.ImagePath}' is not a readable image.");
            using var input = NetworkView(file, grid, cell);
            Save(Outlined(file, grid), Path.Combine(dir, "image.png"));
            Save(Copy(input), Path.Combine(dir, "input.png"));
            using (var icons = IconSheet(grid, cell))
            {
                Save(Copy(icons), Path.Combine(dir, "icons.png"));
                Save(SideBySide(grid, input, icons), Path.Combine(dir, "grid.png"));
            }
            if (grid.ClassNames.Count > 0)
                Save(Attribution(grid, input), Path.Combine(dir, "attribution.png"));
            ConceptHistogram? cells = null;
            if (grid.Atlas is { } atlas)
            {
                cells = Histogram(grid, atlas);
                WriteAtlasViewer(grid, atlas, cells, Path.Combine(dir, "atlas"));
            }
            File.WriteAllText(Path.Combine(dir, "grid.json"), JsonSerializer.Serialize(Data(grid, cells)));
            File.WriteAllText(Path.Combine(dir, "index.html"), Page(grid, cell, cells));
        });
    }

    /// <summary>The counts of the image's positions in every grid of the atlas.</summary>
    internal static ConceptHistogram Histogram(ActivationGrid grid, BuiltAtlas atlas)
    {
        var sizes = atlas.GridSizes;
        int finest = sizes[^1], levels = sizes.Count;
        var counts = new int[finest * finest];
        for (int p = 0; p < grid.Rows * grid.Columns; p++)
            counts[grid.Cells[p * levels + levels - 1]]++;
        return ConceptHistogram.FromCounts(sizes, counts);
    }

    private static void WriteAtlasViewer(ActivationGrid grid, BuiltAtlas atlas, ConceptHistogram cells, string dir)
    {
        string name = Path.GetFileName(grid.ImagePath!);
        var options = new AtlasViewerOptions
        {
            Title = $"{name} on the atlas of {atlas.ModelName} {atlas.LayerName}",
            ModelName = atlas.ModelName,
            LayerName = atlas.LayerName,
            IconPixels = atlas.IconSize,
            ClassValueName = atlas.ClassValueName,
            ImagePathOfRow = row => atlas.ImagePaths[row],
            InitialOverlay = 0,
        };
        var overlay = ViewerOverlay.FromShares($"{name}: its {grid.Rows}x{grid.Columns} positions (share)", cells);
        options.Overlays.Add(new ViewerOverlay(overlay.Name, overlay.Values, overlay.Style) { Unit = "positions" });
        Directory.CreateDirectory(dir);
        AtlasViewerWriter.WriteInto(atlas.Atlas, atlas.Icons, dir, options);
    }

    /// <summary>The network's input: the file's center crop scaled to the icons' grid, <paramref name="cell"/> pixels a position.</summary>
    private static SKBitmap NetworkView(SKBitmap file, ActivationGrid grid, int cell)
    {
        var (x, y, w, h) = grid.InputRegion;
        var view = new SKBitmap(new SKImageInfo(grid.Columns * cell, grid.Rows * cell, SKColorType.Rgba8888, SKAlphaType.Premul));
        using var canvas = new SKCanvas(view);
        using var image = SKImage.FromBitmap(file);
        canvas.DrawImage(image, SKRect.Create(x, y, w, h), SKRect.Create(0, 0, view.Width, view.Height), new SKSamplingOptions(SKFilterMode.Linear, SKMipmapMode.Linear));
        return view;
    }

    /// <summary>The image file with the network's part outlined and divided into the layer's positions.</summary>
    private static SKBitmap Outlined(SKBitmap file, ActivationGrid grid)
    {
        var copy = file.Copy(SKColorType.Rgba8888);
        using var canvas = new SKCanvas(copy);
        var (x, y, w, h) = grid.InputRegion;
        float stroke = Math.Max(1f, Math.Min(w, h) / 150f);
        using var lines = new SKPaint { Color = new SKColor(255, 255, 255, 110), StrokeWidth = stroke * 0.6f, IsStroke = true, IsAntialias = true };
        for (int c = 1; c < grid.Columns; c++)
            canvas.DrawLine(x + (float)w * c / grid.Columns, y, x + (float)w * c / grid.Columns, y + h, lines);
        for (int r = 1; r < grid.Rows; r++)
            canvas.DrawLine(x, y + (float)h * r / grid.Rows, x + w, y + (float)h * r / grid.Rows, lines);
        using var frame = new SKPaint { Color = new SKColor(230, 30, 30), StrokeWidth = stroke, IsStroke = true, IsAntialias = true };
        canvas.DrawRect(x + stroke / 2, y + stroke / 2, w - stroke, h - stroke, frame);
        return copy;
    }

    /// <summary>The icons in the layer's grid, one pixel of white between them; blank (light grey) where the activation is zero.</summary>
    private static SKBitmap IconSheet(ActivationGrid grid, int cell)
    {
        var sheet = new SKBitmap(new SKImageInfo(grid.Columns * cell, grid.Rows * cell, SKColorType.Rgba8888, SKAlphaType.Premul));
        using var canvas = new SKCanvas(sheet);
        canvas.Clear(SKColors.White);
        using var blank = new SKPaint { Color = new SKColor(238, 238, 238) };
        for (int p = 0; p < grid.Icons.Count; p++)
        {
            var dest = SKRect.Create(p % grid.Columns * cell, p / grid.Columns * cell, cell, cell);
            if (grid.Icons[p] is not { } icon)
            {
                canvas.DrawRect(dest, blank);
                continue;
            }
            using var bmp = new SKBitmap(new SKImageInfo(icon.Size, icon.Size, SKColorType.Rgba8888, SKAlphaType.Unpremul));
            System.Runtime.InteropServices.Marshal.Copy(icon.ToRgba(), 0, bmp.GetPixels(), 4 * icon.Size * icon.Size);
            canvas.DrawBitmap(bmp, dest);
        }
        using var gaps = new SKPaint { Color = SKColors.White, StrokeWidth = 1 };
        for (int c = 1; c < grid.Columns; c++)
            canvas.DrawLine(c * cell, 0, c * cell, sheet.Height, gaps);
        for (int r = 1; r < grid.Rows; r++)
            canvas.DrawLine(0, r * cell, sheet.Width, r * cell, gaps);
        return sheet;
    }

    /// <summary>Building Blocks' picture: the network's input (its positions marked) beside the icon of each position.</summary>
    private static SKBitmap SideBySide(ActivationGrid grid, SKBitmap input, SKBitmap icons)
    {
        int header = 28;
        var result = new SKBitmap(new SKImageInfo(input.Width + Gap + icons.Width, header + input.Height, SKColorType.Rgba8888, SKAlphaType.Premul));
        using var canvas = new SKCanvas(result);
        canvas.Clear(SKColors.White);
        canvas.DrawBitmap(input, 0, header);
        using var lines = new SKPaint { Color = new SKColor(255, 255, 255, 120), StrokeWidth = 1 };
        int cell = input.Width / grid.Columns;
        for (int c = 1; c < grid.Columns; c++)
            canvas.DrawLine(c * cell, header, c * cell, header + input.Height, lines);
        for (int r = 1; r < grid.Rows; r++)
            canvas.DrawLine(0, header + r * cell, input.Width, header + r * cell, lines);
        canvas.DrawBitmap(icons, input.Width + Gap, header);
        using var font = new SKFont(SKTypeface.Default, 15);
        using var ink = new SKPaint { Color = new SKColor(40, 40, 40), IsAntialias = true };
        canvas.DrawText($"{Path.GetFileName(grid.ImagePath)} as the network sees it", 0, 19, font, ink);
        canvas.DrawText($"{grid.ModelName} {grid.LayerName}: {grid.Rows}x{grid.Columns} positions", input.Width + Gap, 19, font, ink);
        return result;
    }

    /// <summary>
    /// One panel per top class: the network's input, greyed, under each position's attribution to the class (red
    /// positive, blue negative; one scale for all panels, the largest |value| among them at full colour).
    /// </summary>
    private static SKBitmap Attribution(ActivationGrid grid, SKBitmap input)
    {
        int k = grid.ClassNames.Count, positions = grid.Rows * grid.Columns, header = 28, side = input.Width;
        float max = 1e-12f;
        foreach (int c in grid.TopClasses)
            for (int p = 0; p < positions; p++)
                max = Math.Max(max, Math.Abs(grid.ClassValues[p * k + c]));
        int panels = grid.TopClasses.Count;
        var result = new SKBitmap(new SKImageInfo(panels * side + (panels - 1) * Gap, header + input.Height, SKColorType.Rgba8888, SKAlphaType.Premul));
        using var canvas = new SKCanvas(result);
        canvas.Clear(SKColors.White);
        using var grey = new SKPaint { ColorFilter = SKColorFilter.CreateColorMatrix(
        [
            0.21f, 0.72f, 0.07f, 0, 0,
            0.21f, 0.72f, 0.07f, 0, 0,
            0.21f, 0.72f, 0.07f, 0, 0,
            0, 0, 0, 0.55f, 0,
        ]) };
        using var font = new SKFont(SKTypeface.Default, 15);
        using var ink = new SKPaint { Color = new SKColor(40, 40, 40), IsAntialias = true };
        using var heat = new SKPaint();
        float cw = (float)input.Width / grid.Columns, ch = (float)input.Height / grid.Rows;
        for (int i = 0; i < panels; i++)
        {
            int c = grid.TopClasses[i], left = i * (side + Gap);
            canvas.DrawBitmap(input, left, header, grey);
            double sum = 0;
            for (int p = 0; p < positions; p++)
            {
                float v = grid.ClassValues[p * k + c];
                sum += v;
                var color = HeatmapRenderer.Diverging(v / max);
                heat.Color = color.WithAlpha((byte)(60 + 150 * Math.Min(1f, Math.Abs(v) / max)));
                canvas.DrawRect(left + p % grid.Columns * cw, header + p / grid.Columns * ch, cw, ch, heat);
            }
            canvas.DrawText($"{grid.ClassNames[c]} (sum {sum.ToString("0.###", CultureInfo.InvariantCulture)})", left, 19, font, ink);
        }
        return result;
    }

    private static SKBitmap Copy(SKBitmap bitmap) => bitmap.Copy();

    private static void Save(SKBitmap bitmap, string path)
    {
        using (bitmap)
            File.WriteAllBytes(path, AtlasIcons.Encode(bitmap));
    }

    private static object Data(ActivationGrid grid, ConceptHistogram? cells)
    {
        int k = grid.ClassNames.Count, levels = grid.Atlas?.GridSizes.Count ?? 0, atlasGrid = grid.Atlas?.ImageGridSize ?? 0;
        return new
        {
            image = grid.ImagePath,
            imageSize = new[] { grid.ImageSize.Width, grid.ImageSize.Height },
            inputRegion = new[] { grid.InputRegion.X, grid.InputRegion.Y, grid.InputRegion.Width, grid.InputRegion.Height },
            model = grid.ModelName,
            layer = grid.LayerName,
            rows = grid.Rows,
            columns = grid.Columns,
            classes = grid.ClassNames,
            classSource = grid.ClassSource,
            topClasses = grid.TopClasses,
            atlas = grid.Atlas is null ? null : Path.GetFullPath(grid.Atlas.Folder),
            atlasGrids = grid.Atlas?.GridSizes,
            atlasGrid,
            atlasCells = cells is null ? null : grid.Atlas!.GridSizes.Select(s => new
            {
                size = s,
                cells = Enumerable.Range(0, s * s).Where(i => cells.Counts(s)[i] > 0).Select(i => new { x = i % s, y = i / s, count = cells.Counts(s)[i] }),
            }),
            positions = Enumerable.Range(0, grid.Rows * grid.Columns).Select(p => new
            {
                y = p / grid.Columns,
                x = p % grid.Columns,
                norm = System.Numerics.Tensors.TensorPrimitives.Norm(grid.Activations.AsSpan(p * grid.Activations.Length / (grid.Rows * grid.Columns), grid.Activations.Length / (grid.Rows * grid.Columns))),
                fidelity = grid.Icons[p]?.Fidelity,
                classValues = k == 0 ? null : grid.ClassValues.AsSpan(p * k, k).ToArray(),
                layout = grid.Layout.Length == 0 ? null : grid.Layout.AsSpan(2 * p, 2).ToArray(),
                cells = levels == 0 ? null : grid.Cells.AsSpan(p * levels, levels).ToArray(),
            }),
        };
    }

    private static string Page(ActivationGrid grid, int cell, ConceptHistogram? cells)
    {
        string E(string s) => WebUtility.HtmlEncode(s);
        string name = Path.GetFileName(grid.ImagePath!);
        string json = JsonSerializer.Serialize(Data(grid, cells)).Replace("</", "<\\/", StringComparison.Ordinal);
        string atlasLink = grid.Atlas is null ? "" :
            $"<p>Every position placed on the atlas <code>{E(grid.Atlas.Folder)}</code> by its fitted layout: <a href=\"atlas/index.html\">the atlas with this image's cells highlighted</a>.</p>";
        string heatNote = grid.ClassNames.Count == 0 ? "<p>No class values: give a classifier (<code>--head</code>) or an atlas with a trained head.</p>"
            : $"<p>Class values: attribution h · ∂logit/∂h of each position to the classes of {E(grid.ClassSource ?? "")}. Heat map: <select id=\"heat\"></select> <a href=\"attribution.png\">attribution.png</a></p>";
        return $$"""
<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{{E(name)}}: activation grid of {{E(grid.ModelName)}} {{E(grid.LayerName)}}</title>
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 16px; color: #222; }
.row { display: flex; gap: {{Gap}}px; align-items: flex-start; flex-wrap: wrap; }
.grid { position: relative; display: grid; grid-template-columns: repeat({{grid.Columns}}, {{cell}}px); grid-auto-rows: {{cell}}px; }
.grid div { box-sizing: border-box; border: 1px solid rgba(255,255,255,0.35); }
.grid div.on { outline: 3px solid #e6261e; outline-offset: -3px; }
#view { background: url(input.png) no-repeat; background-size: 100% 100%; }
#icons div { background-image: url(icons.png); background-size: {{grid.Columns * cell}}px {{grid.Rows * cell}}px; }
#info { min-width: 260px; max-width: 340px; }
#info table { border-collapse: collapse; } #info td { padding: 1px 6px; } #info td.v { text-align: right; font-variant-numeric: tabular-nums; }
.bar { display: inline-block; height: 8px; background: #d33; } .bar.neg { background: #36c; }
caption, h2 { text-align: left; font-weight: 600; } h2 { font-size: 15px; margin: 4px 0; }
</style></head><body>
<h1 style="font-size:18px">{{E(name)}} through {{E(grid.ModelName)}}, layer {{E(grid.LayerName)}} ({{grid.Rows}}×{{grid.Columns}} positions)</h1>
<p>Left: the part of the image the network sees (<a href="image.png">outlined in the whole image</a>), divided into the layer's positions. Right: at each position, a feature visualisation of that position's activation vector. Hover a position for its top classes{{(grid.Atlas is null ? "" : " and its cell on the atlas")}}.</p>
{{heatNote}}
{{atlasLink}}
<div class="row">
<div><h2>The network's view</h2><div class="grid" id="view"></div></div>
<div><h2>Activation grid</h2><div class="grid" id="icons"></div></div>
<div id="info"><h2 id="where">Hover a position</h2><div id="details"></div></div>
</div>
<script id="data" type="application/json">{{json}}</script>
<script>
const D = JSON.parse(document.getElementById('data').textContent);
const cell = {{cell}}, view = document.getElementById('view'), icons = document.getElementById('icons');
function heatColor(t) { t = Math.max(-1, Math.min(1, t)); const f = Math.round(255 - 255 * Math.abs(t)); return t >= 0 ? 'rgba(255,' + f + ',' + f + ',0.65)' : 'rgba(' + f + ',' + f + ',255,0.65)'; }
const fmt = v => (Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 1 ? v.toFixed(2) : v.toPrecision(2));
const views = [], tiles = [];
D.positions.forEach((p, i) => {
  const a = document.createElement('div'), b = document.createElement('div');
  b.style.backgroundPosition = (-p.x * cell) + 'px ' + (-p.y * cell) + 'px';
  for (const e of [a, b]) { e.addEventListener('mouseenter', () => show(i)); }
  view.append(a); icons.append(b); views.push(a); tiles.push(b);
});
function show(i) {
  const p = D.positions[i];
  views.forEach((e, j) => e.classList.toggle('on', j === i)); tiles.forEach((e, j) => e.classList.toggle('on', j === i));
  document.getElementById('where').textContent = 'Position (y ' + p.y + ', x ' + p.x + ')';
  let html = '<p>Activation norm ' + fmt(p.norm) + (p.fidelity != null ? ' · icon fidelity ' + p.fidelity.toFixed(2) : ' · zero activation, no icon') + '</p>';
  if (p.classValues) {
    const order = p.classValues.map((v, k) => [k, v]).sort((a, b) => b[1] - a[1]).slice(0, Math.max(3, D.topClasses.length));
    const m = Math.max(1e-12, ...p.classValues.map(Math.abs));
    html += '<table><caption>Top classes (attribution)</caption>' + order.map(([k, v]) =>
      '<tr><td>' + D.classes[k] + '</td><td class="v">' + fmt(v) + '</td><td><span class="bar' + (v < 0 ? ' neg' : '') + '" style="width:' + Math.round(80 * Math.abs(v) / m) + 'px"></span></td></tr>').join('') + '</table>';
  }
  if (p.cells) {
    const level = D.atlasGrids.indexOf(D.atlasGrid), c = p.cells[level], s = D.atlasGrid;
    const same = D.positions.filter(q => q.cells[level] === c).length;
    html += '<p>Atlas cell (' + (c % s) + ', ' + Math.floor(c / s) + ') of the ' + s + '×' + s + ' grid, shared with ' + (same - 1) + ' other position' + (same === 2 ? '' : 's') + ' of this image; layout (' + p.layout.map(v => v.toFixed(2)).join(', ') + ')</p>';
  }
  document.getElementById('details').innerHTML = html;
}
const heat = document.getElementById('heat');
if (heat) {
  const none = document.createElement('option'); none.value = ''; none.textContent = 'none'; heat.append(none);
  const order = D.topClasses.concat(D.classes.map((_, k) => k).filter(k => !D.topClasses.includes(k)));
  for (const k of order) { const o = document.createElement('option'); o.value = k; o.textContent = D.classes[k]; heat.append(o); }
  heat.value = '';
  const paint = () => {
    const k = heat.value === '' ? -1 : Number(heat.value);
    const m = k < 0 ? 1 : Math.max(1e-12, ...D.positions.map(p => Math.abs(p.classValues[k])));
    views.forEach((e, i) => { e.style.background = k < 0 ? '' : heatColor(D.positions[i].classValues[k] / m); });
  };
  heat.addEventListener('change', paint); paint();
}
show(0);
</script>
{{(cells is null ? "" : CellList(grid, cells))}}
</body></html>
""";
    }

    private static string CellList(ActivationGrid grid, ConceptHistogram cells)
    {
        int s = grid.Atlas!.ImageGridSize;
        var counts = cells.Counts(s).ToArray();
        var items = Enumerable.Range(0, s * s).Where(i => counts[i] > 0).OrderByDescending(i => counts[i]).ThenBy(i => i)
            .Select(i => $"<li>cell ({i % s}, {i / s}): {counts[i]} position{(counts[i] == 1 ? "" : "s")}</li>");
        return $"<h2>This image's cells on the atlas's {s}×{s} grid ({counts.Count(c => c > 0)} cells for {grid.Rows * grid.Columns} positions)</h2><ol>{string.Join("", items)}</ol>";
    }
}
