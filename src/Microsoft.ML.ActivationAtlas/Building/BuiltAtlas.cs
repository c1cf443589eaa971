using Microsoft.ML.ActivationAtlas.Attacks;
using Microsoft.ML.ActivationAtlas.Binning;
using Microsoft.ML.ActivationAtlas.ClassAtlas;
using Microsoft.ML.ActivationAtlas.Datasets;
using Microsoft.ML.ActivationAtlas.Extraction;
using Microsoft.ML.ActivationAtlas.Histogram;
using Microsoft.ML.ActivationAtlas.Inversion;
using Microsoft.ML.ActivationAtlas.Onnx;
using Microsoft.ML.ActivationAtlas.Persistence;
using Microsoft.ML.ActivationAtlas.Projection;
using Microsoft.ML.ActivationAtlas.Rendering;
using Microsoft.ML.Data;
using Microsoft.ML.ActivationAtlas.Search;

namespace Microsoft.ML.ActivationAtlas.Building;

/// <summary>
/// An atlas folder written by <see cref="AtlasBuilder"/>, opened again with every setting it was built with: its
/// rows (images and labels), stored activations and class values, the fitted pipeline (<c>model.zip</c>: image path
/// to grid cell), and the atlas aggregated with the build's minimum count and drawn with its icons (kind and size).
/// Nothing is recomputed by a network until <see cref="Pipeline"/> is used.
/// </summary>
public sealed class BuiltAtlas
{
    private readonly MLContext _ml;
    private readonly AtlasFolder.BuildSettings _settings;
    private readonly AtlasFolder.RowList _rows;
    private readonly IAtlasStageStore _store;
    private readonly Lazy<(ITransformer Pipeline, DataViewSchema Schema)> _pipeline;
    private GridAtlas? _atlas;
    private AtlasIcons? _icons;

    private BuiltAtlas(MLContext ml, string folder, AtlasFolder.RowList rows, AtlasFolder.BuildSettings settings, IAtlasStageStore store,
        float[] activations, int dim, float[] classValues)
    {
        _ml = ml;
        Folder = folder;
        _rows = rows;
        _settings = settings;
        _store = store;
        Activations = activations;
        ActivationSize = dim;
        ClassValues = classValues;
        string modelPath = Path.Combine(folder, AtlasFolder.ModelFile);
        _pipeline = new(() =>
        {
            var pipeline = _ml.Model.LoadAtlas(modelPath, out var schema);
            return (pipeline, schema);
        });
    }

    /// <summary>The atlas folder.</summary>
    public string Folder { get; }

    /// <summary>The model's name as built (e.g. <c>resnet18</c>).</summary>
    public string ModelName => _settings.Model;

    /// <summary>The layer.</summary>
    public string LayerName => _settings.Layer;

    /// <summary>The nested grid sizes.</summary>
    public IReadOnlyList<int> GridSizes => _settings.Grids;

    /// <summary>The grid drawn in <c>atlas.png</c>.</summary>
    public int ImageGridSize => _settings.ImageGrid > 0 ? _settings.ImageGrid : _settings.Grids[Math.Min(1, _settings.Grids.Length - 1)];

    /// <summary>Cells with fewer images were left out.</summary>
    public int MinimumCount => _settings.MinimumCount;

    /// <summary>What the cells are drawn as.</summary>
    public AtlasIconKind IconKind => Enum.Parse<AtlasIconKind>(_settings.Icons);

    /// <summary>Icon side in pixels.</summary>
    public int IconSize => _settings.IconSize;

    /// <summary>The finest grid with inverted icons (with <see cref="AtlasIconKind.Inversion"/>; its coarser grids have them too).</summary>
    public int IconGridSize => _settings.IconGrid > 0 ? _settings.IconGrid : ImageGridSize;

    /// <summary>
    /// With <see cref="AtlasIconKind.Inversion"/>: why some cells show example stand-ins (the icon time budget ran out),
    /// as written in <c>atlas.json</c>; null when every cell that should have an inverted icon has one.
    /// </summary>
    public string? IconNote => _settings.IconNote;

    /// <summary>What the class values are: <c>label share</c> or <c>attribution</c>.</summary>
    public string ClassValueName => _settings.ClassValues;

    /// <summary>The class names (the columns of <see cref="ClassValues"/>).</summary>
    public IReadOnlyList<string> ClassNames => _settings.ClassNames;

    /// <summary>The image folder the atlas was built from.</summary>
    public string ImageRoot => _rows.ImageRoot;

    /// <summary>Each row's image file.</summary>
    public IReadOnlyList<string> ImagePaths => _rows.Paths;

    /// <summary>Each row's label (its first-level sub-folder's name, or empty).</summary>
    public IReadOnlyList<string> Labels => _rows.Labels;

    /// <summary>Files of the image folder skipped as unreadable (relative paths).</summary>
    public IReadOnlyList<string> SkippedImages => _settings.Skipped;

    /// <summary>The number of rows (images).</summary>
    public int RowCount => _rows.Paths.Length;

    /// <summary>The activation vectors, row-major [<see cref="RowCount"/>, <see cref="ActivationSize"/>].</summary>
    public float[] Activations { get; }

    /// <summary>The length of an activation vector.</summary>
    public int ActivationSize { get; }

    /// <summary>The class values, row-major [<see cref="RowCount"/>, number of classes].</summary>
    public float[] ClassValues { get; }

    /// <summary>The fitted pipeline: image paths (text column <c>ImagePath</c>) to activation, layout and grid cell. Loaded on first use.</summary>
    public ITransformer Pipeline => _pipeline.Value.Pipeline;

    /// <summary>The pipeline's input schema.</summary>
    public DataViewSchema PipelineInputSchema => _pipeline.Value.Schema;

    /// <summary>The fitted layout stage.</summary>
    public UmapTransformer Layout => ((IEnumerable<ITransformer>)Pipeline).OfType<UmapTransformer>().Single();

    /// <summary>The fitted grid stage.</summary>
    public BinToGridTransformer Grid => ((IEnumerable<ITransformer>)Pipeline).OfType<BinToGridTransformer>().Single();

    /// <summary>The atlas as built: the stored rows laid out and binned by the fitted stages, aggregated with <see cref="MinimumCount"/>.</summary>
    public GridAtlas Atlas => _atlas ??= Aggregate(null, default);

    /// <summary>
    /// The icons as built: example images at <see cref="IconSize"/>, and with <see cref="AtlasIconKind.Inversion"/> the
    /// stored inverted icons (with their fidelity) of the cells that got one.
    /// </summary>
    public AtlasIcons Icons => _icons ??= LoadIcons();

    /// <summary>Opens a built atlas folder.</summary>
    /// <param name="mlContext">The context.</param>
    /// <param name="folder">The folder.</param>
    /// <param name="stageStore">The store the build used, when not the default files in <c>&lt;folder&gt;/cache</c>.</param>
    public static BuiltAtlas Open(MLContext mlContext, string folder, IAtlasStageStore? stageStore = null)
    {
        ArgumentNullException.ThrowIfNull(mlContext);
        var (rows, settings) = AtlasFolder.Open(folder);
        var store = stageStore ?? new FileStageStore(Path.Combine(folder, AtlasFolder.CacheFolder));
        if (!File.Exists(Path.Combine(folder, AtlasFolder.ModelFile)))
            throw new InvalidDataException($"'{folder}' has no fitted pipeline ({AtlasFolder.ModelFile}).");
        var (activations, n, dim) = Load(store, "activations", settings.ActivationsKey);
        if (activations is null || n != rows.Paths.Length)
            throw new InvalidDataException($"'{folder}': the stored activations ({AtlasFolder.CacheFolder}/activations.bin) are missing or do not match {AtlasFolder.RowsFile}.");
        var (classValues, cn, k) = Load(store, "classes", settings.ClassesKey);
        if (classValues is null || cn != n || k != settings.ClassNames.Length)
            throw new InvalidDataException($"'{folder}': the stored class values ({AtlasFolder.CacheFolder}/classes.bin) are missing or do not match {AtlasFolder.SettingsFile}.");
        return new BuiltAtlas(mlContext, folder, rows, settings, store, activations, dim, classValues);
    }

    /// <summary>The index of a class by name (case-insensitive), with an error listing the known classes.</summary>
    /// <param name="name">The class.</param>
    public int ClassIndex(string name)
    {
        for (int i = 0; i < _settings.ClassNames.Length; i++)
            if (string.Equals(_settings.ClassNames[i], name, StringComparison.OrdinalIgnoreCase))
                return i;
        throw new ArgumentException(_settings.ClassNames.Length == 0
            ? $"Unknown class '{name}': the atlas has no classes (its images were not in class sub-folders)."
            : $"Unknown class '{name}'. Known classes: {string.Join(", ", _settings.ClassNames)}.");
    }

    /// <summary>The atlas re-aggregated from the stored rows with the fitted layout and grid (and <see cref="MinimumCount"/>).</summary>
    /// <param name="progress">Receives the aggregation's progress (optional).</param>
    /// <param name="cancellationToken">Cancels it.</param>
    public GridAtlas Aggregate(IProgress<double>? progress, CancellationToken cancellationToken)
    {
        int k = ClassNames.Count;
        var view = Matrices.View(RowCount, (AtlasStages.Activation, Activations, ActivationSize), (AtlasStages.ClassValues, ClassValues, k));
        var atlas = AtlasStages.Aggregate(_ml, Grid.Transform(Layout.Transform(view)), ClassNames, MinimumCount, progress, cancellationToken);
        return _atlas ??= atlas;
    }

    /// <summary>Where new images land on the atlas: their concept histogram over the atlas's grids.</summary>
    /// <param name="imagePaths">The images.</param>
    /// <param name="cancellationToken">Cancels the network pass.</param>
    public ConceptHistogram ConceptHistogram(IEnumerable<string> imagePaths, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(imagePaths);
        var paths = imagePaths as IReadOnlyCollection<string> ?? imagePaths.ToList();
        return ConceptHistogram(paths, 0, paths.Count, cancellationToken);
    }

    /// <summary>
    /// Where new images land on the atlas, for images that are rows <paramref name="firstRowIndex"/> onwards of a list of
    /// <paramref name="totalImages"/>: each image gets the random activation position and the layout position it gets
    /// in a pass over the whole list, so the histograms of the parts of a list add up to the histogram of the list.
    /// </summary>
    /// <param name="imagePaths">The images.</param>
    /// <param name="firstRowIndex">The index of the first image in the whole list.</param>
    /// <param name="totalImages">The number of images in the whole list.</param>
    /// <param name="cancellationToken">Cancels the network pass.</param>
    public ConceptHistogram ConceptHistogram(IReadOnlyCollection<string> imagePaths, long firstRowIndex, long totalImages, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(imagePaths);
        ArgumentOutOfRangeException.ThrowIfNegative(firstRowIndex);
        if (totalImages < firstRowIndex + imagePaths.Count)
            throw new ArgumentOutOfRangeException(nameof(totalImages), totalImages, $"The whole list ({totalImages} images) must hold images {firstRowIndex} to {firstRowIndex + imagePaths.Count - 1}.");
        // In blocks: UMAP places the rows it is given together, so one block's activations are held at a time and
        // memory does not grow with the number of images beyond the counts (a row's cell does not depend on its block).
        var paths = imagePaths as IReadOnlyList<string> ?? imagePaths.ToList();
        var parts = new List<ConceptHistogram>();
        for (int start = 0; start < paths.Count || (start == 0 && parts.Count == 0); start += HistogramBlockRows)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var block = paths.Skip(start).Take(HistogramBlockRows);
            var data = _ml.Data.LoadFromEnumerable(block.Select(p => new ImagePathRow { ImagePath = p }));
            var copies = new List<ActivationExtractingTransformer>();
            var pipeline = PartOf(Pipeline, firstRowIndex + start, totalImages, copies);
            try
            {
                parts.Add(_ml.Data.ConceptHistogram(pipeline.Transform(data), Grid.OutputColumnName, cancellationToken));
            }
            finally
            {
                foreach (var copy in copies)
                    copy.Dispose();
            }
            if (paths.Count == 0)
                break;
        }
        return parts.Count == 1 ? parts[0] : Histogram.ConceptHistogram.Merge(parts);
    }

    /// <summary>Images a concept histogram runs through the pipeline at once.</summary>
    internal const int HistogramBlockRows = 1024;

    /// <summary>The pipeline for a part of a list: rows <paramref name="firstRowIndex"/> onwards of <paramref name="totalRows"/>.</summary>
    private static ITransformer PartOf(ITransformer transformer, long firstRowIndex, long totalRows, List<ActivationExtractingTransformer> copies)
    {
        switch (transformer)
        {
            case ActivationExtractingTransformer e when firstRowIndex != 0:
                var copy = e.StartingAtRow(e.Settings.FirstRowIndex + firstRowIndex);
                copies.Add(copy);
                return copy;
            case UmapTransformer u:
                return u.ForPartOf(firstRowIndex, totalRows);
            case IEnumerable<ITransformer> chain:
                return new TransformerChain<ITransformer>(chain.Select(t => PartOf(t, firstRowIndex, totalRows, copies)).ToArray());
            default:
                return transformer;
        }
    }

    /// <summary>
    /// Writes the concept histogram of new images on this atlas into a new folder: <c>histogram.png</c> (the atlas's
    /// icons with opacity by the images' share, a legend and the top concepts on <paramref name="gridSize"/>),
    /// <c>comparison.png</c> (with <paramref name="compare"/>: the cells whose share differs significantly, and the most
    /// over- and under-represented concepts), <c>histogram.json</c>, <c>counts.json</c> and the atlas viewer opened on
    /// the histogram.
    /// </summary>
    /// <param name="images">The new images.</param>
    /// <param name="compare">A second set of images to compare with, or null.</param>
    /// <param name="gridSize">The grid of the pictures and ranked lists; one of <see cref="GridSizes"/>.</param>
    /// <param name="outputFolder">The folder to create; it must not exist.</param>
    /// <param name="progress">Receives each stage's progress (optional).</param>
    /// <param name="cancellationToken">Cancels the work.</param>
    /// <param name="comparison">The comparison's settings (false discovery rate, ...); null takes the defaults.</param>
    public ConceptHistogramResult WriteConceptHistogram(ImageFolder images, ImageFolder? compare, int gridSize, string outputFolder,
        IProgress<AtlasBuildProgress>? progress = null, CancellationToken cancellationToken = default, HistogramComparisonOptions? comparison = null)
    {
        ArgumentNullException.ThrowIfNull(images);
        CheckGrid(gridSize);
        AtlasFolder.EnsureFree(outputFolder);
        var report = new StageReporter(progress);
        var stage = report.Start("histogram");
        var a = ConceptHistogram(images.Paths, cancellationToken);
        stage.Done($"{a.Total:N0} images");
        ConceptHistogram? b = null;
        if (compare is not null)
        {
            stage = report.Start("compare");
            b = ConceptHistogram(compare.Paths, cancellationToken);
            stage.Done($"{b.Total:N0} images");
        }
        WriteConceptHistogram(a, images.Root, b, compare?.Root, gridSize, outputFolder, progress, comparison);
        return new ConceptHistogramResult(a, b);
    }

    /// <summary>
    /// Writes the views of concept histograms already counted (for example summed from the shards of a large folder)
    /// into a new folder: the same files as
    /// <see cref="WriteConceptHistogram(ImageFolder, ImageFolder?, int, string, IProgress{AtlasBuildProgress}?, CancellationToken, HistogramComparisonOptions?)"/>.
    /// </summary>
    /// <param name="histogram">The histogram of the images.</param>
    /// <param name="imagesRoot">The images' folder (named in the views and <c>histogram.json</c>).</param>
    /// <param name="compared">The histogram to compare with, or null.</param>
    /// <param name="compareRoot">Its folder, or null.</param>
    /// <param name="gridSize">The grid of the pictures and ranked lists; one of <see cref="GridSizes"/>.</param>
    /// <param name="outputFolder">The folder to create; it must not exist.</param>
    /// <param name="progress">Receives each stage's progress (optional).</param>
    /// <param name="comparison">The comparison's settings; null takes the defaults.</param>
    public void WriteConceptHistogram(ConceptHistogram histogram, string imagesRoot, ConceptHistogram? compared, string? compareRoot,
        int gridSize, string outputFolder, IProgress<AtlasBuildProgress>? progress = null, HistogramComparisonOptions? comparison = null)
    {
        ArgumentNullException.ThrowIfNull(histogram);
        ArgumentNullException.ThrowIfNull(imagesRoot);
        CheckGrid(gridSize);
        if (compared is not null && compareRoot is null)
            throw new ArgumentNullException(nameof(compareRoot), "A compared histogram needs its folder.");
        AtlasFolder.EnsureFree(outputFolder);
        comparison ??= new HistogramComparisonOptions();
        var a = histogram;
        var b = compared;
        var report = new StageReporter(progress);
        var stage = report.Start("atlas");
        var atlas = Atlas;
        var icons = Icons;
        stage.Done();
        stage = report.Start("outputs");
        int grid = gridSize;
        var sizes = GridSizes;
        string nameA = Path.GetFileName(Path.TrimEndingDirectorySeparator(imagesRoot));
        AtomicOutput.WriteDirectory(outputFolder, overwrite: false, dir =>
        {
            ConceptHistogramRenderer.Render(atlas, icons, a, Path.Combine(dir, "histogram.png"), new ConceptHistogramImageOptions
            {
                GridSize = grid, Title = $"{nameA} on the atlas of {ModelName} {LayerName}",
            });
            a.Save(Path.Combine(dir, "counts.json"));
            var options = new AtlasViewerOptions
            {
                Title = $"Concept histogram of {nameA} on the atlas of {ModelName} {LayerName}",
                ModelName = ModelName,
                LayerName = LayerName,
                IconPixels = IconSize,
                ClassValueName = ClassValueName,
                ImagePathOfRow = row => ImagePaths[row],
                InitialOverlay = 0,
                IconNote = IconNote,
            };
            options.Overlays.Add(ViewerOverlay.FromShares($"{nameA} (share)", a));
            var cells = b is null ? null : HistogramComparison.Compare(a, b, grid, comparison);
            if (b is not null)
            {
                string nameB = Path.GetFileName(Path.TrimEndingDirectorySeparator(compareRoot!));
                ConceptHistogramRenderer.RenderComparison(atlas, icons, cells!, nameA, nameB, Path.Combine(dir, "comparison.png"),
                    new ConceptHistogramImageOptions { Title = $"{nameA} vs {nameB} on the atlas of {ModelName} {LayerName}" });
                options.Overlays.Add(ViewerOverlay.FromComparison($"{nameA} vs {nameB} (significant ratios)", a, b, comparison));
                options.Overlays.Add(ViewerOverlay.FromShares($"{nameB} (share)", b));
            }
            stage.Report(0.3);
            AtlasViewerWriter.WriteInto(atlas, icons, dir, options);
            File.WriteAllText(Path.Combine(dir, "histogram.json"), System.Text.Json.JsonSerializer.Serialize(new
            {
                atlas = Path.GetFullPath(Folder),
                images = imagesRoot,
                total = a.Total,
                compare = compareRoot,
                compareTotal = b?.Total,
                grids = sizes.Select(s => new { size = s, counts = a.Counts(s).ToArray(), compareCounts = b?.Counts(s).ToArray() }),
                comparison = cells is null ? null : new { grid, falseDiscoveryRate = comparison.FalseDiscoveryRate, cells = cells.Cells },
            }));
        });
        stage.Done();
    }

    /// <summary>Fails, naming the atlas's grids, when <paramref name="gridSize"/> is not one of them.</summary>
    internal void CheckGrid(int gridSize)
    {
        if (!GridSizes.Contains(gridSize))
            throw new ArgumentOutOfRangeException(nameof(gridSize), gridSize, $"{gridSize} is not one of the atlas's grids ({string.Join(",", GridSizes)}).");
    }

    /// <summary>
    /// Pastes icons of this atlas onto the images of class <paramref name="sourceClass"/> and counts how often the
    /// atlas's trained head (<see cref="AtlasHeadKind.Train"/>) then answers <paramref name="targetClass"/>: the icons
    /// of the cells whose class values push hardest towards the target (target minus source, the x axis of
    /// <see cref="WriteComparison"/>) or of the cells named in <see cref="PatchAttackOptions.Cells"/>, each at every size of
    /// <see cref="PatchAttackOptions.Sizes"/> and in the four corners, with uniform noise patches of the same sizes
    /// as the control. Patches are pasted on the image as the network sees it (center-cropped and resized to its input).
    /// </summary>
    /// <param name="sourceClass">The class whose images are attacked (case-insensitive).</param>
    /// <param name="targetClass">The class the patches push towards.</param>
    /// <param name="images">Images whose labels (first-level sub-folders) include <paramref name="sourceClass"/>; the others are ignored.</param>
    /// <param name="options">The settings; null takes the defaults.</param>
    /// <param name="progress">Receives the share of images done (optional).</param>
    /// <param name="cancellationToken">Cancels the attack.</param>
    /// <exception cref="ArgumentException">A class is unknown (the message lists the atlas's classes) or a named cell is empty.</exception>
    /// <exception cref="InvalidOperationException">The atlas has no class values from a trained head.</exception>
    /// <exception cref="InvalidDataException">The folder has no readable images of <paramref name="sourceClass"/>.</exception>
    public PatchAttackResult AttackWithPatches(string sourceClass, string targetClass, ImageFolder images, PatchAttackOptions? options = null,
        IProgress<AtlasBuildProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        var o = options ?? new PatchAttackOptions();
        o.Validate();
        return PatchAttacker.Run(this, sourceClass, targetClass, images, o, new StageReporter(progress), cancellationToken);
    }

    /// <summary>
    /// <see cref="AttackWithPatches"/>, written into a new folder: <c>attack.json</c> (every rate with its 95% Wilson
    /// interval, per patch and placement), <c>index.html</c> (the table, most effective patches first, against the noise
    /// control), <c>contact.png</c> (the most effective patches on example images, each labelled with the head's
    /// answer) and <c>patches/</c> (the icons). The folder is written under a temporary name and renamed when complete.
    /// </summary>
    /// <param name="sourceClass">The class whose images are attacked (case-insensitive).</param>
    /// <param name="targetClass">The class the patches push towards.</param>
    /// <param name="images">Images whose labels include <paramref name="sourceClass"/>.</param>
    /// <param name="outputFolder">The folder to create; it must not exist.</param>
    /// <param name="options">The settings; null takes the defaults.</param>
    /// <param name="progress">Receives each stage's progress (optional).</param>
    /// <param name="cancellationToken">Cancels the work; nothing is written then.</param>
    public PatchAttackResult WritePatchAttack(string sourceClass, string targetClass, ImageFolder images, string outputFolder,
        PatchAttackOptions? options = null, IProgress<AtlasBuildProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        AtlasFolder.EnsureFree(outputFolder);
        var result = AttackWithPatches(sourceClass, targetClass, images, options, progress, cancellationToken);
        var report = new StageReporter(progress);
        var stage = report.Start("outputs");
        var extraction = ((IEnumerable<ITransformer>)Pipeline).OfType<ActivationExtractingTransformer>().First();
        PatchAttackWriter.Write(result, this, (extraction.Engine.Converter.Width, extraction.Engine.Converter.Height), options ?? new PatchAttackOptions(), outputFolder);
        stage.Done();
        return result;
    }

    /// <summary>A kept cell, with errors naming the grid or cell when it is not one.</summary>
    internal AtlasCell FindCell(int gridSize, int x, int y)
    {
        CheckGrid(gridSize);
        if (x < 0 || y < 0 || x >= gridSize || y >= gridSize)
            throw new ArgumentOutOfRangeException(nameof(x), $"Cell {gridSize}:{x},{y} is outside the {gridSize}x{gridSize} grid (x and y run from 0 to {gridSize - 1}).");
        return Atlas.Level(gridSize).Find(x, y)
            ?? throw new ArgumentException($"Cell {gridSize}:{x},{y} is empty: no image of the atlas lies there (or fewer than its minimum count {MinimumCount}).");
    }

    /// <summary>
    /// Writes the class activation atlas of one class into a new folder: the rows <paramref name="filter"/> selects,
    /// laid out anew by UMAP (cosine, the build's minimum distance 0.01), binned, and drawn with the atlas's kind of
    /// icons: of an atlas with inverted icons, each cell's mean activation inverted with the settings the atlas was
    /// built with, within <see cref="SubsetIconOptions.IconBudget"/> (the cells left show example stand-ins, marked as
    /// such); of an atlas with example icons, example images.
    /// </summary>
    /// <param name="className">The class (case-insensitive).</param>
    /// <param name="outputFolder">The folder to create; it must not exist.</param>
    /// <param name="filter">Which rows belong to the class. Default rank (the class is the row's top class).</param>
    /// <param name="top">Rows kept by the magnitude filter. Default 2,000.</param>
    /// <param name="gridSizes">Nested grid sizes; null: 10, 20, 40.</param>
    /// <param name="numberOfNeighbors">UMAP neighbours. Default 20.</param>
    /// <param name="seed">UMAP seed. Default 1.</param>
    /// <param name="progress">Receives each stage's progress (optional).</param>
    /// <param name="cancellationToken">Cancels the work; inverted icons finished before stay in the atlas's stage store for the same call again.</param>
    /// <param name="icons">The inverted icons' budget and sessions; null takes the defaults.</param>
    /// <returns>The number of rows of the class atlas.</returns>
    public int WriteClassAtlas(string className, string outputFolder, ClassFilterKind filter = ClassFilterKind.Rank, int top = 2000, int[]? gridSizes = null,
        int numberOfNeighbors = AtlasBuildOptions.Defaults.NumberOfNeighbors, int seed = AtlasBuildOptions.Defaults.Seed,
        IProgress<AtlasBuildProgress>? progress = null, CancellationToken cancellationToken = default, SubsetIconOptions? icons = null)
    {
        _ = icons?.ResolvedIconBudget;
        int k = ClassIndex(className);
        string name = ClassNames[k];
        AtlasFolder.EnsureFree(outputFolder);
        var rows = ClassFilter.SelectRows(ClassValues, ClassNames.Count, k, filter, top);
        if (rows.Length < 5)
            throw new InvalidOperationException($"Class '{name}' has only {rows.Length} rows in the atlas; a class atlas needs at least 5.");
        var report = new StageReporter(progress);
        var stage = report.Start("umap");
        var view = Matrices.View(rows.Length, (AtlasStages.Activation, Matrices.Gather(Activations, ActivationSize, rows), ActivationSize));
        var umap = AtlasStages.FitLayout(_ml, view, rows.Length, numberOfNeighbors, AtlasBuildOptions.Defaults.MinDist, seed, deterministic: true, stage, cancellationToken);
        var layout = Matrices.Read(umap.Transform(view), "Layout", out _, out _, cancellationToken);
        stage.Done();
        SubsetAtlasWriter.Write(_ml, this, rows, layout, gridSizes ?? [10, 20, 40], k,
            $"Class activation atlas of “{name}” ({ModelName} {LayerName})", outputFolder, report, cancellationToken, icons);
        return rows.Length;
    }

    /// <summary>
    /// Writes the comparison of two classes into a new folder: the rows of either (rank filter) at
    /// x = the difference of their class values (clipped at its 99th percentile, <paramref name="classA"/> on the right)
    /// and y = a 1-D t-SNE of their activations, binned, and drawn with the atlas's kind of icons as
    /// <see cref="WriteClassAtlas"/> draws them.
    /// </summary>
    /// <param name="classA">The class drawn on the right.</param>
    /// <param name="classB">The class drawn on the left.</param>
    /// <param name="outputFolder">The folder to create; it must not exist.</param>
    /// <param name="gridSizes">Nested grid sizes; null: 10, 20, 40.</param>
    /// <param name="perplexity">t-SNE perplexity (lowered for few rows). Default 30.</param>
    /// <param name="seed">t-SNE seed. Default 1.</param>
    /// <param name="progress">Receives each stage's progress (optional).</param>
    /// <param name="cancellationToken">Cancels the work; inverted icons finished before stay in the atlas's stage store for the same call again.</param>
    /// <param name="icons">The inverted icons' budget and sessions; null takes the defaults.</param>
    /// <returns>The number of rows compared.</returns>
    public int WriteComparison(string classA, string classB, string outputFolder, int[]? gridSizes = null, double perplexity = 30,
        int seed = AtlasBuildOptions.Defaults.Seed, IProgress<AtlasBuildProgress>? progress = null, CancellationToken cancellationToken = default,
        SubsetIconOptions? icons = null)
    {
        _ = icons?.ResolvedIconBudget;
        int a = ClassIndex(classA), b = ClassIndex(classB);
        if (a == b)
            throw new ArgumentException($"'{classA}' and '{classB}' are the same class.");
        string na = ClassNames[a], nb = ClassNames[b];
        AtlasFolder.EnsureFree(outputFolder);
        int k = ClassNames.Count;
        var rows = ClassFilter.SelectRows(ClassValues, k, a, ClassFilterKind.Rank, 0)
            .Union(ClassFilter.SelectRows(ClassValues, k, b, ClassFilterKind.Rank, 0)).Order().ToArray();
        if (rows.Length < 5)
            throw new InvalidOperationException($"Classes '{na}' and '{nb}' have only {rows.Length} rows in the atlas; a comparison needs at least 5.");
        var report = new StageReporter(progress);
        var stage = report.Start("t-sne");
        var view = Matrices.View(rows.Length, ("Activation", Matrices.Gather(Activations, ActivationSize, rows), ActivationSize),
            ("Values", Matrices.Gather(ClassValues, k, rows), k));
        // x: the fitted, clipped class difference; y: 1-D t-SNE; together the layout column binned below.
        var pipeline = _ml.Transforms.ClassDifference("CompareX", "Values", a, b)
            .Append(_ml.Transforms.ProjectToTsne(new TsneEstimator.Options
            {
                OutputColumnName = "TsneY",
                InputColumnName = "Activation",
                NumberOfComponents = 1,
                Perplexity = (float)Math.Min(perplexity, (rows.Length - 1) / 3.0),
                Seed = seed,
                Progress = new SyncProgress<ProjectionProgress>(x => stage.Report(x.Fraction)),
                CancellationToken = cancellationToken,
            }))
            .Append(_ml.Transforms.Concatenate("Layout", "CompareX", "TsneY"));
        var layout = Matrices.Read(pipeline.Fit(view).Transform(view), "Layout", out _, out _, cancellationToken);
        stage.Done();
        SubsetAtlasWriter.Write(_ml, this, rows, layout, gridSizes ?? [10, 20, 40], null,
            $"“{na}” (right) vs “{nb}” (left) ({ModelName} {LayerName})", outputFolder, report, cancellationToken, icons,
            AtlasAxes.ClassComparison(na, nb, ClassValueName));
        return rows.Length;
    }

    /// <summary>
    /// Searches images by concept: runs them through the atlas's network at every position of its layer and keeps the
    /// <paramref name="top"/> images whose activation at some position has the largest cosine with the query
    /// (<see cref="ConceptQuery.ForCell"/>, <see cref="ConceptQuery.ForClass"/>, <see cref="ConceptQuery.FromFile"/>),
    /// with that position. Memory is bounded by <paramref name="top"/>, not by the number of images; unreadable
    /// images are skipped and listed.
    /// </summary>
    /// <param name="query">The direction to search for; its length must be the layer's width.</param>
    /// <param name="images">The images.</param>
    /// <param name="top">How many images to keep. Default 50.</param>
    /// <param name="labelOf">Gives an image's label for the results (optional).</param>
    /// <param name="progress">Receives the share of images done (optional).</param>
    /// <param name="cancellationToken">Cancels the search.</param>
    /// <exception cref="InvalidDataException">No image could be read.</exception>
    public ConceptSearchResult SearchImages(ConceptQuery query, IReadOnlyList<string> images, int top = 50, Func<string, string>? labelOf = null,
        IProgress<double>? progress = null, CancellationToken cancellationToken = default) =>
        SearchImages([query], images, top, labelOf, progress, cancellationToken)[0];

    /// <summary>
    /// <see cref="SearchImages(ConceptQuery, IReadOnlyList{string}, int, Func{string, string}?, IProgress{double}?, CancellationToken)"/>
    /// for several queries in one pass of the network: one result per query, in order.
    /// </summary>
    /// <param name="queries">The directions to search for.</param>
    /// <param name="images">The images.</param>
    /// <param name="top">How many images to keep per query. Default 50.</param>
    /// <param name="labelOf">Gives an image's label for the results (optional).</param>
    /// <param name="progress">Receives the share of images done (optional).</param>
    /// <param name="cancellationToken">Cancels the search.</param>
    /// <exception cref="InvalidDataException">No image could be read.</exception>
    public IReadOnlyList<ConceptSearchResult> SearchImages(IReadOnlyList<ConceptQuery> queries, IReadOnlyList<string> images, int top = 50,
        Func<string, string>? labelOf = null, IProgress<double>? progress = null, CancellationToken cancellationToken = default) =>
        ConceptSearch.Run(_ml, Extraction, queries, images, labelOf, top, progress, cancellationToken);

    /// <summary>
    /// <see cref="SearchImages(ConceptQuery, IReadOnlyList{string}, int, Func{string, string}?, IProgress{double}?, CancellationToken)"/> over an image folder, written into a new folder: <c>index.html</c> (the matches
    /// with their region outlined), <c>search.json</c> (each match's score, path, label, position and region, and the
    /// files skipped as unreadable) and
    /// <c>images/</c> (copies of the matched files).
    /// </summary>
    /// <param name="query">The direction to search for.</param>
    /// <param name="images">The images.</param>
    /// <param name="top">How many images to keep.</param>
    /// <param name="outputFolder">The folder to create; it must not exist.</param>
    /// <param name="progress">Receives each stage's progress (optional).</param>
    /// <param name="cancellationToken">Cancels the work; nothing is written then.</param>
    public ConceptSearchResult WriteSearch(ConceptQuery query, ImageFolder images, int top, string outputFolder,
        IProgress<AtlasBuildProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(images);
        AtlasFolder.EnsureFree(outputFolder);
        if (images.Paths.Count == 0)
            throw new InvalidDataException($"The image folder '{images.Root}' holds no readable images ({images.Unreadable.Count} unreadable: {string.Join(", ", images.Unreadable.Take(5))}).");
        var report = new StageReporter(progress);
        var stage = report.Start("search");
        var labels = LabelsOf(images);
        var result = SearchImages(query, images.Paths, top, p => labels.GetValueOrDefault(p, ""), stage, cancellationToken);
        stage.Done($"{result.ImagesSearched:N0} images, {result.ImagesPerSecond:0.#}/s");
        stage = report.Start("outputs");
        ConceptSearchWriter.Write(result, Folder, images.Root, images.Unreadable, outputFolder);
        stage.Done();
        return result;
    }

    /// <summary>
    /// The article's "looking at a single image" on this atlas: the image through the atlas's network at every
    /// position of its layer, an inverted icon per position, each position's attribution to the classes of the atlas's
    /// trained head (or of <see cref="ActivationGridOptions.HeadModel"/>), and every position placed on the atlas by its
    /// fitted layout and grid, as the atlas's pipeline places new rows.
    /// </summary>
    /// <param name="imagePath">The image file.</param>
    /// <param name="options">Settings; null for the defaults. Its <see cref="ActivationGridOptions.Atlas"/> is this atlas.</param>
    /// <param name="progress">Receives each stage's progress (optional).</param>
    /// <param name="cancellationToken">Cancels the work.</param>
    public ActivationGrid ActivationGrid(string imagePath, ActivationGridOptions? options = null,
        IProgress<AtlasBuildProgress>? progress = null, CancellationToken cancellationToken = default)
        => ActivationGridBuilder.Build(_ml, imagePath, WithAtlas(options), progress, cancellationToken);

    /// <summary>
    /// <see cref="ActivationGrid(string, ActivationGridOptions?, IProgress{AtlasBuildProgress}?, CancellationToken)"/>
    /// written into a new folder (see <see cref="Inversion.ActivationGrid.Write"/>), with the atlas viewer showing this
    /// image's cells.
    /// </summary>
    /// <param name="imagePath">The image file.</param>
    /// <param name="outputFolder">The folder to create; it must not exist.</param>
    /// <param name="options">Settings; null for the defaults.</param>
    /// <param name="progress">Receives each stage's progress (optional).</param>
    /// <param name="cancellationToken">Cancels the work; nothing is written then.</param>
    public ActivationGrid WriteActivationGrid(string imagePath, string outputFolder, ActivationGridOptions? options = null,
        IProgress<AtlasBuildProgress>? progress = null, CancellationToken cancellationToken = default)
        => ActivationGridWriter.Build(_ml, imagePath, outputFolder, WithAtlas(options), progress, cancellationToken);

    private ActivationGridOptions WithAtlas(ActivationGridOptions? options)
    {
        options ??= new ActivationGridOptions();
        if (options.Atlas is not null && !ReferenceEquals(options.Atlas, this))
            throw new ArgumentException($"Options.Atlas is another atlas ('{options.Atlas.Folder}') than '{Folder}'.", nameof(options));
        options.Atlas = this;
        return options;
    }

    /// <summary>The network the atlas was built on, with its preprocessing (from the fitted pipeline).</summary>
    public ActivationModel Model => Extraction.Settings.Model!;

    /// <summary>The atlas's stage store (its finished stages and inverted icons).</summary>
    internal IAtlasStageStore Store => _store;

    /// <summary>The store key of the atlas's inverted icons, or null.</summary>
    internal string? IconStoreKey => _settings.IconKey;

    /// <summary>
    /// How a subset atlas of this atlas (class atlas, comparison) on <paramref name="grids"/> draws its inverted icons:
    /// with the settings this atlas was built with, or, for an atlas built before they were kept, the defaults and a
    /// note saying so; null for an atlas with example icons.
    /// </summary>
    internal (AtlasIconStep.Plan? Plan, string? Note) SubsetIconPlan(SubsetIconOptions? options, IEnumerable<int> grids)
    {
        if (IconKind != AtlasIconKind.Inversion)
            return (null, null);
        options ??= new SubsetIconOptions();
        var budget = options.ResolvedIconBudget;
        var settings = _settings.IconSettings;
        string? note = null;
        if (settings is null)
        {
            settings = IconSettingsOrDefaults();
            note = string.Create(System.Globalization.CultureInfo.InvariantCulture,
                $"The atlas it comes from does not record its icon settings ({AtlasFolder.SettingsFile} written before they were kept), so its cells are inverted with the defaults: {settings.Steps} steps, {settings.Size} px, seed {settings.Seed}.");
        }
        var inversion = settings.Inversion(Model, Extraction.Layers[0].Name, options.Session ?? new(), Extraction.Settings.Tokens);
        return (new AtlasIconStep.Plan(inversion, grids.Order().ToArray(), settings.MinimumCount, budget, IconSize), note);
    }

    /// <summary>The settings the atlas's icons were inverted with, or the build's defaults where none are kept.</summary>
    private AtlasIconStep.IconSettings IconSettingsOrDefaults() => _settings.IconSettings
        ?? AtlasIconStep.IconSettings.Of(new FeatureInversionEstimator.Options { Steps = AtlasBuildOptions.Defaults.IconSteps, Seed = _settings.Seed },
            AtlasBuildOptions.Defaults.IconMinimumCount);

    /// <summary>The fitted extraction stage of the pipeline.</summary>
    internal ActivationExtractingTransformer Extraction => ((IEnumerable<ITransformer>)Pipeline).OfType<ActivationExtractingTransformer>().First();

    /// <summary>
    /// The network with the atlas's trained head attached after <paramref name="layer"/> (its patch tokens' mean on a token layer), or null
    /// when the atlas has no trained head kept (built without one, or before heads were kept).
    /// </summary>
    internal ActivationModel? TrainedHeadModel(ActivationModel model, OnnxLayerInfo layer)
    {
        if (_settings.ClassesKey is not { } key || ClassValueName != "attribution"
            || !_store.TryLoad(AtlasFolder.HeadEntry, key, out var packed, out int classes, out int columns) || classes != ClassNames.Count)
            return null;
        return LinearHeadTrainer.Attach(model, layer, LinearHead.Unpack(packed, classes, columns, ClassNames.ToArray()));
    }

    /// <summary>The label of each image of a folder, by path.</summary>
    internal static Dictionary<string, string> LabelsOf(ImageFolder images) =>
        images.Paths.Zip(images.Labels).ToDictionary(p => p.First, p => p.Second, StringComparer.Ordinal);

    /// <summary>
    /// The trained linear head the class values were computed from (<see cref="AtlasHeadKind.Train"/>): as stored by
    /// the build, or trained again from the stored spatial means and labels exactly as the build trains it.
    /// </summary>
    internal LinearHead TrainedHead()
    {
        if (ClassValueName != "attribution")
            throw new InvalidOperationException($"The atlas '{Folder}' has no class values from a classifier: it was built without a head (its cells hold " +
                $"{ClassValueName}s). Build it with --head train (AtlasHeadKind.Train) to classify images with the atlas's head.");
        string? key = _settings.ClassesKey;
        if (key is null || !key.EndsWith("|" + nameof(AtlasHeadKind.Train), StringComparison.Ordinal))
            throw new NotSupportedException($"The atlas '{Folder}' was built with an ONNX classifier as its head; classifying new images is supported " +
                "for atlases built with --head train (AtlasHeadKind.Train).");
        if (_store.TryLoad(AtlasFolder.HeadEntry, key, out var packed, out int k, out int columns) && k == ClassNames.Count && columns == ActivationSize + 1)
            return LinearHead.Unpack(packed, k, columns, ClassNames.ToArray());
        var extraction = ((IEnumerable<ITransformer>)Pipeline).OfType<ActivationExtractingTransformer>().First();
        var (means, n, dim) = Load(_store, "head-features", _settings.ActivationsKey);
        if (means is null && extraction.Settings.Sampling == ActivationSampling.SpatialMean)
            (means, n, dim) = (Activations, RowCount, ActivationSize);
        if (means is null || n != RowCount || dim != ActivationSize)
            throw new InvalidDataException($"'{Folder}': neither the trained head ({AtlasFolder.CacheFolder}/{AtlasFolder.HeadEntry}.bin) nor the spatial means it is trained on " +
                $"({AtlasFolder.CacheFolder}/head-features.bin) are stored; build the atlas again.");
        var head = LinearHeadTrainer.TrainWeights(_ml, means, dim, Labels);
        if (!head.ClassNames.SequenceEqual(ClassNames))
            throw new InvalidDataException($"'{Folder}': the head trained again has classes {string.Join(", ", head.ClassNames)}, not the atlas's {string.Join(", ", ClassNames)}.");
        return head;
    }

    /// <summary>
    /// The icon <see cref="Icons"/> holds for one cell (null for a cell without examples), without drawing every
    /// grid's icons when they are not loaded yet.
    /// </summary>
    internal byte[]? CellIcon(AtlasCell cell)
    {
        if (_icons is not null)
            return _icons.Get(cell.GridSize, cell.X, cell.Y);
        if (IconKind == AtlasIconKind.Inversion && cell.GridSize == IconGridSize && _settings.IconKey is { } key
            && _store.TryLoadBytes(AtlasIconStep.Entry(IconGridSize, cell), key, out var png))
            return png;
        return cell.ExampleRows.Count == 0 ? null : AtlasIcons.Thumbnail(ImagePaths[cell.ExampleRows[0]], IconSize);
    }

    /// <summary>
    /// Inverted icons (PNG) of some cells: the atlas's own where it holds one for the cell, else rendered now, cold,
    /// through the build's icon step (the settings the atlas's icons were inverted with, or the defaults for an atlas with
    /// example icons; <paramref name="steps"/> steps, the build's seed, the layer read with the build's token layout), so
    /// an atlas built with example icons need not invert every cell for the few that are used.
    /// </summary>
    internal byte[][] InvertedCellIcons(IReadOnlyList<AtlasCell> cells, int steps, StageReporter report, CancellationToken ct)
    {
        var pngs = new byte[]?[cells.Count];
        if (IconKind == AtlasIconKind.Inversion && _settings.IconKey is { } key)
            for (int i = 0; i < cells.Count; i++)
                if (_store.TryLoadBytes(AtlasIconStep.Entry(cells[i].GridSize, cells[i]), key, out var png))
                    pngs[i] = png;
        var missing = Enumerable.Range(0, cells.Count).Where(i => pngs[i] is null).ToArray();
        if (missing.Length > 0)
        {
            var inversion = IconSettingsOrDefaults().Inversion(Model, Extraction.Layers[0].Name, Extraction.Settings.Session.Clone(), Extraction.Settings.Tokens);
            inversion.Steps = steps;
            var rendered = AtlasIconStep.RenderCells(_ml, missing.Select(i => cells[i]).ToArray(), inversion, Activations, report, ct);
            for (int j = 0; j < missing.Length; j++)
                pngs[missing[j]] = rendered[j];
        }
        return pngs.Select(p => p!).ToArray();
    }

    private AtlasIcons LoadIcons()
    {
        var icons = AtlasIcons.FromNearestExamples(Atlas, row => ImagePaths[row], IconSize);
        if (IconKind != AtlasIconKind.Inversion || _settings.IconKey is not { } key)
            return icons;
        AtlasIconStep.Load(Atlas, _settings.IconGrids ?? [IconGridSize], _store, key, icons);
        return icons;
    }

    private static (float[]? Values, int Rows, int Columns) Load(IAtlasStageStore store, string stage, string? key) =>
        key is not null && store.TryLoad(stage, key, out var v, out int r, out int c) ? (v, r, c) : (null, 0, 0);
}

/// <summary>The concept histograms <see cref="BuiltAtlas.WriteConceptHistogram(ImageFolder, ImageFolder?, int, string, IProgress{AtlasBuildProgress}?, CancellationToken, HistogramComparisonOptions?)"/> wrote.</summary>
/// <param name="Histogram">Where the images landed.</param>
/// <param name="Compared">Where the images compared with landed, or null.</param>
public sealed record ConceptHistogramResult(ConceptHistogram Histogram, ConceptHistogram? Compared);
