using System.Globalization;
using System.Text.Json;
using Microsoft.ML.ActivationAtlas.Attribution;
using Microsoft.ML.ActivationAtlas.Binning;
using Microsoft.ML.ActivationAtlas.Cluster;
using Microsoft.ML.ActivationAtlas.Datasets;
using Microsoft.ML.ActivationAtlas.Extraction;
using Microsoft.ML.ActivationAtlas.Onnx;
using Microsoft.ML.ActivationAtlas.Persistence;
using Microsoft.ML.ActivationAtlas.Projection;
using Microsoft.ML.ActivationAtlas.Rendering;
using Microsoft.ML.Data;

namespace Microsoft.ML.ActivationAtlas.Building;

/// <summary>
/// Builds an activation atlas of a folder of images in one call, composing the public stages: activation extraction
/// from the image paths (one network pass giving each image's randomly placed vector and, for a trained head, the
/// spatial mean), <c>ComputeAttribution</c> for the class values, <c>ProjectToUmap</c>, <c>BinToGrid</c> and
/// <c>AggregateAtlas</c>, the icons, and the renderers. Created by <c>mlContext.Atlas()</c>.
/// </summary>
/// <remarks>
/// <para>
/// By default each cell is drawn as a feature-inversion icon of its mean activation
/// (<see cref="AtlasBuildOptions.Icons"/>): one <c>FeatureIconRenderer</c> renders the coarsest grid's cells cold
/// (<see cref="AtlasBuildOptions.IconSteps"/>) and each finer grid's cells warm-started from their parent cell's
/// optimised parameters, until <see cref="AtlasBuildOptions.IconBudget"/> is spent (10 minutes on the CPU, unlimited
/// with CUDA); cells left keep their nearest example image as a stand-in, and <c>atlas.json</c> (per cell
/// <c>icon</c>, and <c>fidelity</c>, <c>plausibility</c>, <c>steps</c>, <c>warmStarted</c> and the downstream
/// <c>agreement</c>, <c>cellClass</c>, <c>iconClass</c>, <c>classMatch</c> of an inverted icon) and the viewer say which
/// is which. <c>atlas.png</c> draws <see cref="AtlasBuildOptions.ImageGridSize"/>, or, when not set
/// and the budget stopped short of the default grid, the finest grid whose cells are all inverted.
/// </para>
/// <para>
/// The output folder is written as <c>&lt;out&gt;.partial</c> and renamed when complete. Finished stages, and pages of
/// <see cref="AtlasBuildOptions.PageRows"/> activation rows while extraction runs, go to the stage store, so the same
/// call after an interruption (even a killed process) continues where it stopped. A seeded build gives byte-identical
/// outputs (with the default <see cref="AtlasBuildOptions.DeterministicLayout"/>) when the icon budget is not reached
/// (the inverted icons are reproducible, but how many fit in the budget depends on the machine).
/// </para>
/// </remarks>
public sealed partial class AtlasBuilder
{
    private const string ActivationColumn = AtlasStages.Activation;
    private const string MeanColumn = "SpatialMean";
    private const string PositionColumn = "Position";
    private const string AttributionColumn = "Attribution";
    private const string ClassNamesEntry = "class-names.json";
    private const string LayoutEntry = "layout.zip";

    private readonly MLContext _ml;

    internal AtlasBuilder(MLContext mlContext) => _ml = mlContext ?? throw new ArgumentNullException(nameof(mlContext));

    /// <summary>Builds the atlas of the images under <paramref name="imageFolder"/> (sub-folder names are the labels) into <paramref name="outputFolder"/>.</summary>
    /// <param name="imageFolder">The images, searched recursively.</param>
    /// <param name="outputFolder">The atlas folder to create; it must not exist.</param>
    /// <param name="options">The settings.</param>
    /// <param name="progress">Receives each stage's progress (optional).</param>
    /// <param name="cancellationToken">Cancels the build; the work folder is kept for a later resume.</param>
    /// <returns>The built atlas, as <see cref="Open"/> reads it.</returns>
    public BuiltAtlas Build(string imageFolder, string outputFolder, AtlasBuildOptions options, IProgress<AtlasBuildProgress>? progress = null,
        CancellationToken cancellationToken = default)
    {
        var (images, o) = Scan(imageFolder, outputFolder, options, progress);
        return Build(images, outputFolder, o, progress, cancellationToken);
    }

    /// <summary>The images of a folder as a build lists them (<see cref="AtlasBuildOptions.Samples"/>, unreadable files).</summary>
    private static (ImageFolder Images, AtlasBuildOptions Options) Scan(string imageFolder, string outputFolder, AtlasBuildOptions options,
        IProgress<AtlasBuildProgress>? progress)
    {
        ArgumentNullException.ThrowIfNull(options);
        var o = options.Clone();
        o.Validate();
        AtlasFolder.EnsureFree(outputFolder);
        var stage = new StageReporter(progress).Start("images");
        var images = ImageFolder.Scan(imageFolder, o.Samples, o.Seed, skipUnreadable: o.SkipUnreadableImages);
        stage.Done($"{images.Paths.Count:N0} images" + (images.Unreadable.Count > 0 ? $", {images.Unreadable.Count:N0} unreadable files skipped" : ""));
        return (images, o);
    }

    /// <summary>Builds the atlas of an image listing (e.g. a filtered <see cref="ImageFolder.Scan"/>) into <paramref name="outputFolder"/>.</summary>
    /// <param name="images">The images and their labels.</param>
    /// <param name="outputFolder">The atlas folder to create; it must not exist.</param>
    /// <param name="options">The settings (<see cref="AtlasBuildOptions.Samples"/> is not applied again).</param>
    /// <param name="progress">Receives each stage's progress (optional).</param>
    /// <param name="cancellationToken">Cancels the build; the work folder is kept for a later resume.</param>
    /// <returns>The built atlas, as <see cref="Open"/> reads it.</returns>
    public BuiltAtlas Build(ImageFolder images, string outputFolder, AtlasBuildOptions options, IProgress<AtlasBuildProgress>? progress = null,
        CancellationToken cancellationToken = default) => BuildRows(images, null, outputFolder, options, progress, cancellationToken);

    /// <summary>
    /// Builds the atlas of an image listing from activations already extracted (one row per image, in the listing's
    /// order), skipping the network pass: every later stage is the same as in a build that extracted them itself.
    /// </summary>
    /// <param name="images">The images and their labels, in the order of the rows.</param>
    /// <param name="activations">The rows of <see cref="AtlasBuildOptions.Layer"/> (and their spatial means for <see cref="AtlasHeadKind.Train"/>).</param>
    /// <param name="outputFolder">The atlas folder to create; it must not exist.</param>
    /// <param name="options">The settings; <see cref="AtlasHeadKind.Model"/> is not available (its attributions need the network pass).</param>
    /// <param name="progress">Receives each stage's progress (optional).</param>
    /// <param name="cancellationToken">Cancels the build; the work folder is kept for a later resume.</param>
    /// <returns>The built atlas, as <see cref="Open"/> reads it.</returns>
    public BuiltAtlas Build(ImageFolder images, LayerActivations activations, string outputFolder, AtlasBuildOptions options,
        IProgress<AtlasBuildProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(activations);
        return BuildRows(images, activations, outputFolder, options, progress, cancellationToken);
    }

    // The caller's options, copied (never written to) and checked, for a folder big enough for an atlas.
    private static AtlasBuildOptions CheckedCopy(ImageFolder images, AtlasBuildOptions options)
    {
        ArgumentNullException.ThrowIfNull(images);
        ArgumentNullException.ThrowIfNull(options);
        var o = options.Clone();
        o.Validate();
        if (images.Paths.Count < 5)
            throw new InvalidOperationException($"An atlas needs at least 5 images; '{images.Root}' has {images.Paths.Count}.");
        return o;
    }

    private BuiltAtlas BuildRows(ImageFolder images, LayerActivations? given, string outputFolder, AtlasBuildOptions options, IProgress<AtlasBuildProgress>? progress,
        CancellationToken cancellationToken)
    {
        var o = CheckedCopy(images, options);
        given?.CheckFor(images, o);
        bool fresh = !Directory.Exists(AtlasFolder.WorkFolder(outputFolder));
        string work = AtlasFolder.PrepareWork(outputFolder);
        var run = new Run(_ml, o, images, o.StageStore ?? new FileStageStore(Path.Combine(work, AtlasFolder.CacheFolder)),
            new StageReporter(progress), cancellationToken) { Given = given };
        try
        {
            run.Execute(work);
        }
        catch (Exception e) when (e is not OperationCanceledException && fresh && !Directory.EnumerateFiles(work, "*", SearchOption.AllDirectories).Any())
        {
            // Bad input found before anything was kept (a wrong layer, a head without it): leave nothing behind.
            Directory.Delete(work, recursive: true);
            throw;
        }
        AtlasFolder.Complete(work, outputFolder);
        return BuiltAtlas.Open(_ml, outputFolder, o.StageStore);
    }

    /// <summary>
    /// Runs only the network pass of <see cref="Build(string, string, AtlasBuildOptions, IProgress{AtlasBuildProgress}?, CancellationToken)"/>
    /// for one <see cref="Shard"/> of it: the shard's share of the pages of <see cref="AtlasBuildOptions.PageRows"/> rows
    /// (shard k of n takes pages <c>[k*P/n, (k+1)*P/n)</c> of the P pages) goes to the build's stage store
    /// (<see cref="AtlasBuildOptions.StageStore"/>, by default <c>&lt;out&gt;.partial/cache</c>), where the build with the
    /// same images and options finds it and runs the network only for pages no shard stored. Shards can run at once, on
    /// machines that share the folder; pages already stored are kept.
    /// </summary>
    /// <param name="imageFolder">The images, searched recursively (scanned as the build scans them).</param>
    /// <param name="outputFolder">The atlas folder the build will create; it must not exist.</param>
    /// <param name="options">The build's settings (only those of the extraction and the images matter here).</param>
    /// <param name="shard">The part to extract.</param>
    /// <param name="progress">Receives each stage's progress (optional).</param>
    /// <param name="cancellationToken">Cancels the work; finished pages stay stored.</param>
    public AtlasShardExtraction ExtractShard(string imageFolder, string outputFolder, AtlasBuildOptions options, Shard shard,
        IProgress<AtlasBuildProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        var (images, o) = Scan(imageFolder, outputFolder, options, progress);
        return ExtractShard(images, outputFolder, o, shard, progress, cancellationToken);
    }

    /// <summary>
    /// <see cref="ExtractShard(string, string, AtlasBuildOptions, Shard, IProgress{AtlasBuildProgress}?, CancellationToken)"/>
    /// of an image listing, for the build of the same listing.
    /// </summary>
    /// <param name="images">The images and their labels.</param>
    /// <param name="outputFolder">The atlas folder the build will create; it must not exist.</param>
    /// <param name="options">The build's settings.</param>
    /// <param name="shard">The part to extract.</param>
    /// <param name="progress">Receives each stage's progress (optional).</param>
    /// <param name="cancellationToken">Cancels the work; finished pages stay stored.</param>
    public AtlasShardExtraction ExtractShard(ImageFolder images, string outputFolder, AtlasBuildOptions options, Shard shard,
        IProgress<AtlasBuildProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        var o = CheckedCopy(images, options);
        string work = AtlasFolder.PrepareWork(outputFolder);
        var run = new Run(_ml, o, images, o.StageStore ?? new FileStageStore(Path.Combine(work, AtlasFolder.CacheFolder)),
            new StageReporter(progress), cancellationToken);
        var (pages, computed) = run.ExtractShard(shard);
        return new AtlasShardExtraction(shard, pages, computed);
    }

    /// <summary>Opens a built atlas folder with every setting it was built with.</summary>
    /// <param name="folder">The folder <see cref="Build(string, string, AtlasBuildOptions, IProgress{AtlasBuildProgress}?, CancellationToken)"/> wrote.</param>
    /// <param name="stageStore">The store the build used, when not the default files in the folder.</param>
    public BuiltAtlas Open(string folder, IAtlasStageStore? stageStore = null) => BuiltAtlas.Open(_ml, folder, stageStore);

    /// <summary>One build: the stages in order, each reused from the store when it holds them.</summary>
    private sealed class Run(MLContext ml, AtlasBuildOptions o, ImageFolder images, IAtlasStageStore store, StageReporter report, CancellationToken ct)
    {
        private readonly int _rows = images.Paths.Count;
        private readonly string _imagesKey = $"{images.Fingerprint()}|{o.Samples}|{o.Seed}";
        private string ActivationKey => $"{_imagesKey}|{o.Model!.Description}|{o.Layer}|{o.Sampling}"
            + (o.Tokens is null || o.Tokens == TokenLayout.Default ? "" : $"|tokens {o.Tokens}") + (Given is null ? "" : "|given " + Given.Fingerprint);

        /// <summary>Activations extracted by the caller, used instead of the network pass.</summary>
        public LayerActivations? Given { get; init; }

        /// <summary>The key of the extraction pass's entries (with an ONNX head, its attributions come from the same pass).</summary>
        private string ExtractionKey => ActivationKey + (o.Head == AtlasHeadKind.Model ? "|" + o.HeadModel!.Description : "");

        private string ClassesKey => o.Head == AtlasHeadKind.Model ? ExtractionKey : $"{ActivationKey}|{o.Head}";

        public void Execute(string work)
        {
            var extraction = ml.Transforms.ExtractActivations(ExtractionOptions(firstRow: 0)).Fit(Input(0));
            string layer = extraction.Layers[0].Name;
            var (activations, dim, means, attributions) = Extract(extraction);

            var (classNames, classValues, classValueName) = ClassValues(extraction.Layers[0], activations, dim, means, attributions);
            if (o.Head != AtlasHeadKind.Model)
                store.Save("classes", ClassesKey, classValues, _rows, classNames.Length);

            var umap = Layout(activations, dim);
            var layout = Matrices.Read(umap.Transform(Matrices.View(_rows, (ActivationColumn, activations, dim))), "Layout", out _, out _, ct);

            GridAtlas atlas;
            BinToGridTransformer grid;
            var stage = report.Start("grid");
            var view = Matrices.View(_rows, (ActivationColumn, activations, dim), ("Layout", layout, 2), (AtlasStages.ClassValues, classValues, classNames.Length));
            grid = ml.Transforms.BinToGrid(new BinToGridEstimator.Options { GridSizes = o.GridSizes }).Fit(view);
            atlas = AtlasStages.Aggregate(ml, grid.Transform(view), classNames, o.MinimumCount, stage, ct);
            stage.Done(string.Join(", ", atlas.Levels.Select(l => $"{l.GridSize}: {l.Cells.Count} cells")));

            string iconKey = $"{ActivationKey}|{o.NumberOfNeighbors}|{o.MinDist.ToString(CultureInfo.InvariantCulture)}|{o.DeterministicLayout}|{string.Join(",", o.GridSizes)}|{o.MinimumCount}|{o.IconSize}|{AtlasIconStep.InversionKey(o, layer)}";
            var downstream = DownstreamOf(atlas, grid, layout, activations, means, dim, classNames, classValues);
            var (icons, completeGrids, iconNote) = AtlasIconStep.Render(ml, atlas, row => images.Paths[row], activations, o.IconSize,
                o.Icons == AtlasIconKind.Inversion ? AtlasIconStep.Plan.Of(o, layer) : null, downstream, store, iconKey, report, ct);

            stage = report.Start("outputs");
            foreach (var sub in new[] { "icons", "examples", "classes" })
                if (Directory.Exists(Path.Combine(work, sub)))
                    Directory.Delete(Path.Combine(work, sub), true);
            string modelName = o.ModelName ?? o.Model!.BuiltInName ?? o.Model.Description;
            int imageGrid = ImageGrid(completeGrids);
            AtlasImageRenderer.Render(atlas, icons, Path.Combine(work, "atlas.png"),
                new AtlasImageOptions { GridSize = imageGrid, CellPixels = Math.Max(16, Math.Min(o.IconSize, 8192 / imageGrid)) });
            stage.Report(0.2);
            AtlasViewerWriter.WriteInto(atlas, icons, work, new AtlasViewerOptions
            {
                Title = $"Activation atlas of {modelName} {o.Layer}",
                ModelName = modelName,
                LayerName = o.Layer,
                IconPixels = o.IconSize,
                ClassValueName = classValueName,
                ImagePathOfRow = row => images.Paths[row],
                IconNote = iconNote,
            });
            stage.Report(0.7);
            AtlasJsonWriter.Write(atlas, icons, Path.Combine(work, "atlas.json"), modelName, o.Layer, iconNote);
            // The fitted pipeline: image path -> activation -> layout -> grid cell, for new images (concept histograms).
            var pipeline = new TransformerChain<ITransformer>(extraction, umap, grid);
            ml.Model.SaveAtlas(pipeline, Input(0).Schema, Path.Combine(work, AtlasFolder.ModelFile));
            AtlasFolder.WriteJson(Path.Combine(work, AtlasFolder.RowsFile), new AtlasFolder.RowList(images.Root, images.Paths.ToArray(), images.Labels.ToArray()));
            var invertedGrids = AtlasIconStep.InvertedGrids(o.GridSizes, o.IconGridSize);
            AtlasFolder.WriteJson(Path.Combine(work, AtlasFolder.SettingsFile), new AtlasFolder.BuildSettings(modelName, o.Layer, o.GridSizes, classValueName, classNames)
            {
                MinimumCount = o.MinimumCount,
                Icons = o.Icons.ToString(),
                IconSize = o.IconSize,
                IconGrid = o.Icons == AtlasIconKind.Inversion ? invertedGrids.Max() : imageGrid,
                IconGrids = o.Icons == AtlasIconKind.Inversion ? invertedGrids : null,
                IconBudgetSeconds = o.Icons == AtlasIconKind.Inversion ? o.ResolvedIconBudget?.TotalSeconds : null,
                IconNote = iconNote,
                ImageGrid = imageGrid,
                IconKey = o.Icons == AtlasIconKind.Inversion ? iconKey : null,
                IconSettings = o.Icons == AtlasIconKind.Inversion ? AtlasIconStep.IconSettings.Of(AtlasIconStep.InversionOptions(o, layer), o.IconMinimumCount) : null,
                ActivationsKey = ExtractionKey,
                ClassesKey = ClassesKey,
                Seed = o.Seed,
                SkippedCount = images.Unreadable.Count,
                Skipped = images.Unreadable.ToArray(),
            });
            // Only a resumed build's finer cells start from the stored parameters; the finished atlas needs the PNGs.
            if (o.Icons == AtlasIconKind.Inversion)
                AtlasIconStep.DiscardParameters(atlas, invertedGrids, store);
            stage.Done();
            extraction.Dispose();
        }

        /// <summary>
        /// What the inverted icons' downstream agreement compares them with: per cell, the mean of its members' spatial
        /// means of the layer (what the trained head reads; the members' rows when the build keeps no spatial means, as
        /// with spatial-mean sampling, where the rows are those means), and the class head on them: the atlas's trained
        /// head, else the class directions of its class values (<see cref="LinearHead.ClassCentroids"/>).
        /// </summary>
        private AtlasIconStep.Downstream DownstreamOf(GridAtlas atlas, BinToGridTransformer grid, float[] layout, float[] activations, float[]? means,
            int dim, string[] classNames, float[] classValues)
        {
            if (o.Icons != AtlasIconKind.Inversion)
                return new AtlasIconStep.Downstream((_, cell) => cell.MeanActivation, null);
            var pooled = atlas;
            if (means is not null)
            {
                var view = Matrices.View(_rows, (ActivationColumn, means, dim), ("Layout", layout, 2));
                pooled = AtlasStages.Aggregate(ml, grid.Transform(view), [], o.MinimumCount, null, ct);
            }
            LinearHead? head = null;
            if (o.Head == AtlasHeadKind.Train && store.TryLoad(AtlasFolder.HeadEntry, ClassesKey, out var packed, out int k, out int columns)
                && k == classNames.Length && columns == dim + 1)
                head = LinearHead.Unpack(packed, k, columns, classNames);
            else if (classNames.Length > 0)
                head = LinearHead.ClassCentroids(means ?? activations, dim, classValues, classNames);
            return new AtlasIconStep.Downstream((g, cell) => pooled.Level(g).Find(cell.X, cell.Y)?.MeanActivation ?? cell.MeanActivation, head);
        }

        /// <summary>The grid drawn in <c>atlas.png</c>: the one asked for, else <see cref="AtlasIconStep.ImageGrid"/> of the default.</summary>
        private int ImageGrid(IReadOnlyList<int> completeGrids) =>
            o.ImageGridSize ?? AtlasIconStep.ImageGrid(o.ResolvedImageGridSize, o.Icons == AtlasIconKind.Inversion, completeGrids);

        /// <summary>The store entry of one page of a stage's rows.</summary>
        private static string PageEntry(string stage, int page) => $"{stage}.page{page.ToString("D5", CultureInfo.InvariantCulture)}";

        private IDataView Input(int firstRow, int count = int.MaxValue) =>
            ml.Data.LoadFromEnumerable(images.Paths.Skip(firstRow).Take(count).Select(p => new ImagePathRow { ImagePath = p }));

        private ActivationExtractingEstimator.Options ExtractionOptions(long firstRow) => new()
        {
            Model = o.Model,
            Layers = [o.Layer],
            OutputColumnNames = [ActivationColumn],
            InputColumnName = nameof(ImagePathRow.ImagePath),
            SpatialMeanColumnName = o.Head == AtlasHeadKind.Train && o.Sampling == ActivationSampling.RandomPosition ? MeanColumn : null,
            Sampling = o.Sampling,
            Seed = o.Seed,
            FirstRowIndex = firstRow,
            BatchSize = o.BatchSize,
            Session = o.Session,
            Tokens = o.Tokens,
        };

        /// <summary>
        /// One pass of the network over the images, in pages of <see cref="AtlasBuildOptions.PageRows"/> rows kept in the
        /// store: the activation at each image's position, the spatial mean for a trained head, and, for an ONNX head,
        /// the attribution to its logits.
        /// </summary>
        private (float[] Activations, int Dim, float[]? Means, float[]? Attributions) Extract(ActivationExtractingTransformer extraction)
        {
            int dim = extraction.Layers[0].Channels;
            bool withMeans = extraction.SpatialMeanColumnName is not null;
            bool withAttribution = o.Head == AtlasHeadKind.Model;
            string key = ExtractionKey;
            if (Given is { } given)
            {
                if (given.Dimension != dim)
                    throw new ArgumentException($"The given activations have {given.Dimension} values per row; layer '{o.Layer}' has {dim} channels.", nameof(LayerActivations));
                store.Save("activations", key, given.Activations, _rows, dim);
                if (withMeans)
                    store.Save("head-features", key, given.SpatialMeans!, _rows, dim);
                report.Reused("activations", $"{_rows:N0} x {dim}, given");
                return (given.Activations, dim, withMeans ? given.SpatialMeans : null, null);
            }
            if (store.TryLoad("activations", key, out var act, out int n, out int d) && n == _rows && d == dim
                && (!withMeans || store.TryLoad("head-features", key, out _, out _, out _))
                && (!withAttribution || store.TryLoad("classes", key, out _, out _, out _)))
            {
                report.Reused("activations", $"{n:N0} x {d}");
                // Pages left by a run stopped between storing the whole stage and removing them.
                foreach (var entry in new[] { "activations", "positions", "head-features", "classes" })
                    for (int p = 0; p * (long)o.PageRows < _rows; p++)
                        store.Delete(PageEntry(entry, p));
                float[]? m = withMeans && store.TryLoad("head-features", key, out var mm, out _, out _) ? mm : null;
                float[]? a = withAttribution && store.TryLoad("classes", key, out var aa, out _, out _) ? aa : null;
                return (act, dim, m, a);
            }

            var columns = Columns(withMeans, withAttribution);
            int pages = Pages;
            var (parts, widths, computed) = ExtractPages(extraction, columns, 0, pages);
            if (computed == 0)
                report.Reused("activations", $"{_rows:N0} x {dim} from {pages:N0} stored pages");
            var whole = new float[columns.Count][];
            for (int c = 0; c < columns.Count; c++)
            {
                whole[c] = new float[(long)_rows * widths[c]];
                for (int p = 0, offset = 0; p < pages; offset += parts[c][p].Length, p++)
                    parts[c][p].CopyTo(whole[c], offset);
                store.Save(columns[c].Stage, key, whole[c], _rows, widths[c]);
            }
            for (int p = 0; p < pages; p++)
                for (int c = 0; c < columns.Count; c++)
                    store.Delete(PageEntry(columns[c].Stage, p));
            int Index(string s) => columns.FindIndex(c => c.Stage == s);
            return (whole[0], dim, withMeans ? whole[Index("head-features")] : null, withAttribution ? whole[Index("classes")] : null);
        }

        private int Pages => (_rows + o.PageRows - 1) / o.PageRows;

        /// <summary>The store entries of the extraction pass and the columns they hold.</summary>
        private static List<(string Stage, string Column)> Columns(bool withMeans, bool withAttribution)
        {
            var columns = new List<(string Stage, string Column)> { ("activations", ActivationColumn), ("positions", PositionColumn) };
            if (withMeans)
                columns.Add(("head-features", MeanColumn));
            if (withAttribution)
                columns.Add(("classes", AttributionColumn));
            return columns;
        }

        /// <summary>
        /// Extraction for a sharded build: the pages of one shard of the page list, computed where the store lacks them
        /// and kept there for the build that follows.
        /// </summary>
        public (int Pages, int Computed) ExtractShard(Shard shard)
        {
            using var extraction = ml.Transforms.ExtractActivations(ExtractionOptions(firstRow: 0)).Fit(Input(0));
            int from = (int)shard.Start(Pages), to = (int)shard.End(Pages);
            var columns = Columns(extraction.SpatialMeanColumnName is not null, o.Head == AtlasHeadKind.Model);
            var (_, _, computed) = ExtractPages(extraction, columns, from, to);
            if (computed == 0)
                report.Reused("activations", $"pages {from:N0} to {to - 1:N0} of {Pages:N0}");
            return (to - from, computed);
        }

        /// <summary>
        /// Pages <paramref name="from"/> to <paramref name="to"/> - 1 of the extraction pass: those in the store are
        /// loaded, and each run of missing pages is computed in one pass starting at its first row (a row's position
        /// depends on its index in the whole list) and stored page by page.
        /// </summary>
        private (float[][][] Parts, int[] Widths, int Computed) ExtractPages(ActivationExtractingTransformer extraction,
            List<(string Stage, string Column)> columns, int from, int to)
        {
            string key = ExtractionKey;
            int pageRows = o.PageRows, pages = Pages;
            bool withAttribution = o.Head == AtlasHeadKind.Model;
            var parts = new float[columns.Count][][];
            var widths = new int[columns.Count];
            for (int c = 0; c < columns.Count; c++)
                parts[c] = new float[pages][];
            string Page(int c, int p) => PageEntry(columns[c].Stage, p);
            int PageSize(int p) => Math.Min(pageRows, _rows - p * pageRows);

            // Pages finished by an earlier, interrupted run or by the shards of an extraction.
            var missing = new bool[pages];
            int computed = 0;
            for (int p = from; p < to; p++)
            {
                for (int c = 0; c < columns.Count && !missing[p]; c++)
                {
                    missing[p] = !(store.TryLoad(Page(c, p), key, out var v, out int r, out int w) && r == PageSize(p));
                    parts[c][p] = v;
                    widths[c] = w;
                }
                computed += missing[p] ? 1 : 0;
            }
            if (computed == 0)
                return (parts, widths, 0);

            var stage = report.Start("activations");
            int done = 0, total = Enumerable.Range(from, to - from).Where(p => missing[p]).Sum(PageSize);
            for (int first = from; first < to; first++)
            {
                if (!missing[first])
                    continue;
                int end = first;
                while (end < to && missing[end])
                    end++;
                var part = first == 0 ? extraction : extraction.StartingAtRow(first * (long)pageRows);
                var data = part.Transform(Input(first * pageRows, Math.Min(_rows, end * pageRows) - first * pageRows));
                AttributionTransformer? attribution = null;
                if (withAttribution)
                {
                    try
                    {
                        attribution = ml.Transforms.ComputeAttribution(new AttributionEstimator.Options
                        {
                            Model = o.HeadModel,
                            Layer = o.Layer,
                            MaxPoolRelaxation = o.MaxPoolRelaxation,
                            InputColumnName = nameof(ImagePathRow.ImagePath),
                            PositionColumnName = PositionColumn,
                            OutputColumnName = AttributionColumn,
                            BatchSize = o.BatchSize,
                            Session = o.Session,
                            Tokens = o.Tokens,
                        }).Fit(data);
                    }
                    catch (ArgumentException e)
                    {
                        // Named as the head's fault (HeadModel), so callers can say which file it was.
                        throw new ArgumentException($"The classifier {o.HeadModel!.Description}: {e.Message}", nameof(AtlasBuildOptions.HeadModel), e);
                    }
                    store.SaveBytes(ClassNamesEntry, key, JsonSerializer.SerializeToUtf8Bytes(attribution.ClassNames.ToArray()));
                    data = attribution.Transform(data);
                }
                var schemaColumns = columns.Select(c => data.Schema[c.Column]).ToArray();
                for (int c = 0; c < columns.Count; c++)
                    widths[c] = columns[c].Column == PositionColumn ? 2 : ((VectorDataViewType)schemaColumns[c].Type).Size;
                using (var cursor = data.GetRowCursor(schemaColumns))
                {
                    var floatGetters = schemaColumns.Select(c => c.Name == PositionColumn ? null : cursor.GetGetter<VBuffer<float>>(c)).ToArray();
                    var positionGetter = cursor.GetGetter<VBuffer<int>>(data.Schema[PositionColumn]);
                    VBuffer<float> row = default;
                    VBuffer<int> position = default;
                    for (int p = first; p < end; p++)
                    {
                        int size = PageSize(p);
                        var buffers = widths.Select(w => new float[size * w]).ToArray();
                        for (int r = 0; r < size; r++)
                        {
                            ct.ThrowIfCancellationRequested();
                            if (!cursor.MoveNext())
                                throw new InvalidOperationException($"Extraction returned {p * pageRows + r} rows for {_rows} images.");
                            for (int c = 0; c < columns.Count; c++)
                            {
                                if (floatGetters[c] is { } g)
                                {
                                    g(ref row);
                                    row.CopyTo(buffers[c].AsSpan(r * widths[c], widths[c]));
                                }
                                else
                                {
                                    positionGetter(ref position);
                                    buffers[c][2 * r] = position.GetItemOrDefault(0);
                                    buffers[c][2 * r + 1] = position.GetItemOrDefault(1);
                                }
                            }
                            stage.Report((done + r + 1.0) / total);
                        }
                        done += size;
                        // The page is complete once its last entry is written: the activations go last.
                        for (int c = columns.Count - 1; c >= 0; c--)
                        {
                            store.Save(Page(c, p), key, buffers[c], size, widths[c]);
                            parts[c][p] = buffers[c];
                        }
                    }
                }
                attribution?.Dispose();
                if (!ReferenceEquals(part, extraction))
                    part.Dispose();
                first = end - 1;
            }
            stage.Done($"{total:N0} rows in {computed:N0} pages" + (computed < to - from ? $"; {to - from - computed:N0} pages were stored" : ""));
            return (parts, widths, computed);
        }

        /// <summary>The class values of each row: label shares, or attributions to the classes of a head.</summary>
        private (string[] Names, float[] Values, string Kind) ClassValues(OnnxLayerInfo layer, float[] activations, int dim, float[]? means, float[]? attributions)
        {
            switch (o.Head)
            {
                case AtlasHeadKind.None:
                {
                    var names = images.Labels.Where(l => l.Length > 0).Distinct().Order(StringComparer.Ordinal).ToArray();
                    var values = new float[_rows * names.Length];
                    for (int i = 0; i < _rows && names.Length > 0; i++)
                    {
                        int k = Array.IndexOf(names, images.Labels[i]);
                        if (k >= 0)
                            values[i * names.Length + k] = 1f;
                    }
                    return (names, values, "label share");
                }
                case AtlasHeadKind.Model:
                {
                    if (!store.TryLoadBytes(ClassNamesEntry, ExtractionKey, out var json))
                        throw new InvalidDataException($"The stage store holds the attributions but not their class names ({ClassNamesEntry}); remove the work folder and build again.");
                    return (JsonSerializer.Deserialize<string[]>(json)!, attributions!, "attribution");
                }
                default:
                {
                    // The head trains on the layer's spatial means (a token layer's patch-token means), and reads the
                    // layer only through that mean: the attribution stage computes the attributions in closed form from
                    // the stored activations.
                    var stage = report.Start("head");
                    var weights = LinearHeadTrainer.TrainWeights(ml, means ?? activations, dim, images.Labels);
                    var names = weights.ClassNames;
                    // Kept for classifying new images with the same head (patch attacks).
                    store.Save(AtlasFolder.HeadEntry, ClassesKey, weights.Packed(), names.Length, dim + 1);
                    var head = LinearHeadTrainer.Attach(o.Model!, layer, weights);
                    stage.Done($"{names.Length} classes");
                    stage = report.Start("attribution");
                    var view = Matrices.View(_rows, (ActivationColumn, activations, dim));
                    using var attribution = ml.Transforms.ComputeAttribution(new AttributionEstimator.Options
                    {
                        Model = head,
                        Layer = layer.Name,
                        Tokens = o.Tokens,
                        ActivationColumnName = ActivationColumn,
                        OutputColumnName = AttributionColumn,
                        Method = AttributionMethod.LinearHead,
                    }).Fit(view);
                    var values = Matrices.Read(attribution.Transform(view), AttributionColumn, out _, out _, ct);
                    stage.Done($"{names.Length} classes, from the head's weights");
                    return (attribution.ClassNames.ToArray(), values, "attribution");
                }
            }
        }

        /// <summary>The UMAP layout of the activations (cosine), fitted once and kept in the store.</summary>
        private UmapTransformer Layout(float[] activations, int dim)
        {
            string key = $"{ActivationKey}|umap|{o.NumberOfNeighbors}|{o.MinDist.ToString(CultureInfo.InvariantCulture)}|{o.Seed}|{o.DeterministicLayout}";
            if (store.TryLoadBytes(LayoutEntry, key, out var saved))
            {
                using var stream = new MemoryStream(saved);
                var loaded = ((IEnumerable<ITransformer>)ml.Model.LoadAtlas(stream, out _)).OfType<UmapTransformer>().Single();
                report.Reused("umap");
                return loaded;
            }
            var stage = report.Start("umap");
            var view = Matrices.View(_rows, (ActivationColumn, activations, dim));
            var umap = AtlasStages.FitLayout(ml, view, _rows, o.NumberOfNeighbors, o.MinDist, o.Seed, o.DeterministicLayout, stage, ct);
            using (var stream = new MemoryStream())
            {
                ml.Model.SaveAtlas(new TransformerChain<ITransformer>(umap), view.Schema, stream);
                store.SaveBytes(LayoutEntry, key, stream.ToArray());
            }
            stage.Done();
            return umap;
        }
    }
}

/// <summary>What <see cref="AtlasBuilder.ExtractShard(string, string, AtlasBuildOptions, Shard, IProgress{AtlasBuildProgress}?, CancellationToken)"/> did.</summary>
/// <param name="Shard">The shard.</param>
/// <param name="Pages">The shard's pages.</param>
/// <param name="ComputedPages">Pages the network ran for (the others were stored already).</param>
public sealed record AtlasShardExtraction(Shard Shard, int Pages, int ComputedPages);
