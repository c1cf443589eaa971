using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.ML.ActivationAtlas.ClassAtlas;
using Microsoft.ML.ActivationAtlas.Datasets;
using Microsoft.ML.ActivationAtlas.Onnx;
using Microsoft.ML.ActivationAtlas.Rendering;
using Microsoft.ML.Data;

namespace Microsoft.ML.ActivationAtlas.Building;

/// <summary>
/// Atlases of several layers built from one network pass (<see cref="AtlasBuilder.BuildLayers"/>): each image has one
/// row in every layer's atlas, read at the same image location, so a cell of one layer can be followed into the
/// others. The folder holds <c>layers/&lt;layer&gt;/</c> (one atlas folder per layer), <c>atlas.json</c> (the layers,
/// the images, each image's position on each layer's grid and its cell on each layer's grids) and <c>index.html</c>
/// (the layers' viewers behind a layer switch, linked).
/// </summary>
public sealed class LinkedAtlas
{
    /// <summary>The file at the top of the folder that links the layers.</summary>
    public const string LinksFile = "atlas.json";

    private readonly Dictionary<(int Layer, int Grid), int[]> _cells;

    private LinkedAtlas(string folder, BuiltAtlas[] layers, Dictionary<(int, int), int[]> cells)
    {
        Folder = folder;
        Layers = layers;
        _cells = cells;
    }

    /// <summary>The folder.</summary>
    public string Folder { get; }

    /// <summary>Each layer's atlas, in the order built.</summary>
    public IReadOnlyList<BuiltAtlas> Layers { get; }

    /// <summary>The layers' tensor names.</summary>
    public IReadOnlyList<string> LayerNames => Layers.Select(l => l.LayerName).ToArray();

    /// <summary>The grid sizes, the same on every layer.</summary>
    public IReadOnlyList<int> GridSizes => Layers[0].GridSizes;

    /// <summary>The images (rows), the same on every layer.</summary>
    public int RowCount => Layers[0].RowCount;

    /// <summary>The atlas of one layer.</summary>
    /// <param name="layer">The layer's tensor name.</param>
    public BuiltAtlas Layer(string layer) => Layers[LayerIndex(layer)];

    /// <summary>Each row's cell (y x size + x) on a layer's grid.</summary>
    /// <param name="layer">The layer's tensor name.</param>
    /// <param name="gridSize">One of <see cref="GridSizes"/>.</param>
    public IReadOnlyList<int> Cells(string layer, int gridSize)
    {
        int l = LayerIndex(layer);
        Layers[l].CheckGrid(gridSize);
        return _cells[(l, gridSize)];
    }

    /// <summary>
    /// Where the images of a cell of one layer landed in another layer: the other layer's cells on the same grid with
    /// the number of those images in each, most first.
    /// </summary>
    /// <param name="fromLayer">The layer of the cell.</param>
    /// <param name="gridSize">The grid.</param>
    /// <param name="x">The cell's column.</param>
    /// <param name="y">The cell's row.</param>
    /// <param name="toLayer">The layer to look in.</param>
    public IReadOnlyList<LinkedCell> Follow(string fromLayer, int gridSize, int x, int y, string toLayer)
    {
        var from = Cells(fromLayer, gridSize);
        var to = Cells(toLayer, gridSize);
        int k = y * gridSize + x;
        return Enumerable.Range(0, from.Count).Where(r => from[r] == k).GroupBy(r => to[r])
            .Select(g => new LinkedCell(g.Key % gridSize, g.Key / gridSize, g.Count()))
            .OrderByDescending(t => t.Count).ThenBy(t => t.Y).ThenBy(t => t.X).ToArray();
    }

    /// <summary>Opens a folder written by <see cref="AtlasBuilder.BuildLayers"/>.</summary>
    /// <param name="mlContext">The context.</param>
    /// <param name="folder">The folder.</param>
    public static LinkedAtlas Open(MLContext mlContext, string folder)
    {
        ArgumentNullException.ThrowIfNull(mlContext);
        string links = Path.Combine(folder, LinksFile);
        if (!File.Exists(links))
            throw new InvalidDataException($"'{folder}' is not a linked layer atlas ({LinksFile} is missing).");
        JsonNode doc;
        try
        {
            doc = JsonNode.Parse(File.ReadAllText(links)) ?? throw new JsonException("empty");
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"'{links}' is damaged: {e.Message}", e);
        }
        var layers = doc["layers"]?.AsArray() is { Count: > 0 } array ? array
            : throw new InvalidDataException($"'{links}' names no layers; it is not a linked layer atlas.");
        var built = layers.Select(l => BuiltAtlas.Open(mlContext, Path.Combine(folder, l!["folder"]!.GetValue<string>()))).ToArray();
        var cells = new Dictionary<(int, int), int[]>();
        var cellNode = doc["cells"]!.AsArray();
        for (int l = 0; l < built.Length; l++)
            foreach (int g in built[l].GridSizes)
                cells[(l, g)] = cellNode[l]![g.ToString(System.Globalization.CultureInfo.InvariantCulture)]!.AsArray().Select(v => v!.GetValue<int>()).ToArray();
        return new LinkedAtlas(folder, built, cells);
    }

    /// <summary>
    /// Writes the class activation atlas of <paramref name="className"/> of every layer
    /// (<see cref="BuiltAtlas.WriteClassAtlas"/>, in <c>layers/&lt;layer&gt;</c>) and an <c>index.html</c> showing them side by side.
    /// </summary>
    /// <param name="className">The class (case-insensitive).</param>
    /// <param name="outputFolder">The folder to create; it must not exist.</param>
    /// <param name="filter">Which rows belong to the class. Default <see cref="ClassFilterKind.Rank"/>.</param>
    /// <param name="top">Rows kept by the magnitude filter. Default 2,000.</param>
    /// <param name="gridSizes">Nested grid sizes; null: 10, 20, 40.</param>
    /// <param name="numberOfNeighbors">UMAP neighbours. Default 20.</param>
    /// <param name="seed">UMAP seed. Default 1.</param>
    /// <param name="layers">The layers to write, in order; null (default): all.</param>
    /// <param name="progress">Receives each stage's progress (optional), named <c>&lt;layer&gt;: &lt;stage&gt;</c>.</param>
    /// <param name="cancellationToken">Cancels the work; the inverted icons finished before stay in the layers' stage stores for the same call again.</param>
    /// <param name="icons">
    /// The inverted icons' budget (shared equally among the layers, as in <see cref="AtlasBuilder.BuildLayers"/>) and
    /// sessions; null takes the defaults. Each layer's class atlas has the icons of that layer's atlas (see <see cref="BuiltAtlas.WriteClassAtlas"/>).
    /// </param>
    /// <returns>Each layer written and the number of rows of its class atlas.</returns>
    public IReadOnlyList<(string Layer, int Rows)> WriteClassAtlases(string className, string outputFolder, ClassFilterKind filter = ClassFilterKind.Rank, int top = 2000,
        int[]? gridSizes = null, int numberOfNeighbors = AtlasBuildOptions.Defaults.NumberOfNeighbors, int seed = AtlasBuildOptions.Defaults.Seed,
        IReadOnlyList<string>? layers = null, IProgress<AtlasBuildProgress>? progress = null, CancellationToken cancellationToken = default,
        SubsetIconOptions? icons = null)
    {
        string name = Layers[0].ClassNames[Layers[0].ClassIndex(className)];
        var chosen = (layers ?? LayerNames).Select(l => Layers[LayerIndex(l)]).ToArray();
        var share = new SubsetIconOptions
        {
            Session = icons?.Session ?? new(),
            IconBudget = (icons ?? new SubsetIconOptions()).ResolvedIconBudget is { } budget ? budget / chosen.Length : Timeout.InfiniteTimeSpan,
        };
        AtlasFolder.EnsureFree(outputFolder);
        string work = AtlasFolder.PrepareWork(outputFolder);
        var counts = new (string, int)[chosen.Length];
        for (int l = 0; l < chosen.Length; l++)
        {
            string layer = chosen[l].LayerName, sub = Path.Combine(work, LayerFolder(layer));
            var prefixed = progress is null ? null : new SyncProgress<AtlasBuildProgress>(p => progress.Report(p with { Stage = layer + ": " + p.Stage }));
            if (Directory.Exists(sub))
                Directory.Delete(sub, recursive: true);
            counts[l] = (layer, chosen[l].WriteClassAtlas(name, sub, filter, top, gridSizes, numberOfNeighbors, seed, prefixed, cancellationToken, share));
        }
        LinkedViewerWriter.WriteSideBySide(work, $"Class activation atlases of “{name}” ({Layers[0].ModelName}, {chosen.Length} layers)",
            chosen.Select(l => (l.LayerName, LayerFolder(l.LayerName).Replace('\\', '/'))).ToArray());
        AtlasFolder.Complete(work, outputFolder);
        return counts;
    }

    /// <summary>The sub-folder of a layer's atlas.</summary>
    internal static string LayerFolder(string layer) =>
        Path.Combine("layers", string.Concat(layer.Select(c => char.IsLetterOrDigit(c) || c is '_' or '-' or '.' ? c : '_')));

    private int LayerIndex(string layer)
    {
        for (int l = 0; l < Layers.Count; l++)
            if (string.Equals(Layers[l].LayerName, layer, StringComparison.Ordinal))
                return l;
        throw new ArgumentException($"Unknown layer '{layer}'. The linked layers: {string.Join(", ", Layers.Select(l => l.LayerName))}.", nameof(layer));
    }

    /// <summary>Each row's cell on every grid of a built atlas (y x size + x), from its fitted layout and grid.</summary>
    internal static Dictionary<int, int[]> RowCells(BuiltAtlas atlas, CancellationToken ct)
    {
        var view = Matrices.View(atlas.RowCount, (AtlasStages.Activation, atlas.Activations, atlas.ActivationSize));
        var binned = atlas.Grid.Transform(atlas.Layout.Transform(view));
        var column = binned.Schema[atlas.Grid.OutputColumnName];
        var sizes = atlas.GridSizes;
        var result = sizes.ToDictionary(g => g, _ => new int[atlas.RowCount]);
        using var cursor = binned.GetRowCursor([column]);
        var getter = cursor.GetGetter<VBuffer<int>>(column);
        VBuffer<int> cell = default;
        for (int r = 0; cursor.MoveNext(); r++)
        {
            ct.ThrowIfCancellationRequested();
            getter(ref cell);
            for (int l = 0; l < sizes.Count; l++)
                result[sizes[l]][r] = cell.GetItemOrDefault(l);
        }
        return result;
    }

    /// <summary>Writes <c>atlas.json</c> and <c>index.html</c> linking the layers' atlases in <paramref name="folder"/>.</summary>
    internal static void WriteLinks(string folder, BuiltAtlas[] built, OnnxLayerInfo[] layers, int[][] layerPositions, (int Height, int Width) input,
        string reference, AtlasBuildOptions o, ImageFolder images, CancellationToken ct)
    {
        string modelName = o.ModelName ?? o.Model!.BuiltInName ?? o.Model.Description;
        string title = $"Linked activation atlases of {modelName}: {string.Join(", ", layers.Select(l => l.Name))}";
        var document = new
        {
            title,
            model = modelName,
            images = images.Paths.Count,
            seed = o.Seed,
            input = new[] { input.Height, input.Width },
            reference,
            positionRule = "one location per image on the reference (finest) layer's grid; each layer reads the cell containing that cell's centre, (i + 0.5) * input / size pixels",
            grids = o.GridSizes,
            layers = layers.Select(l => new { name = l.Name, folder = LayerFolder(l.Name).Replace('\\', '/'), channels = l.Channels, height = l.Height, width = l.Width }),
            // Per layer: each image's [y, x] on the layer's own grid.
            positions = layerPositions,
            // Per layer and grid: each image's cell, y * size + x.
            cells = built.Select(b => RowCells(b, ct).ToDictionary(kv => kv.Key.ToString(System.Globalization.CultureInfo.InvariantCulture), kv => kv.Value)),
            paths = images.Paths.Select(p => Path.GetRelativePath(images.Root, p).Replace('\\', '/')),
            labels = images.Labels,
        };
        string json = JsonSerializer.Serialize(document);
        AtomicOutput.WriteFile(Path.Combine(folder, LinksFile), s => s.Write(System.Text.Encoding.UTF8.GetBytes(json)));
        LinkedViewerWriter.Write(folder, title, json);
    }
}

/// <summary>A cell of a layer's grid where some of the images of a cell of another layer landed (<see cref="LinkedAtlas.Follow"/>).</summary>
/// <param name="X">The cell's column.</param>
/// <param name="Y">The cell's row.</param>
/// <param name="Count">How many of the images are in it.</param>
public readonly record struct LinkedCell(int X, int Y, int Count);
