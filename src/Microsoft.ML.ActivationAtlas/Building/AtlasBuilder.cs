using System.Globalization;
using System.Text.Json;
using Microsoft.ML.ActivationAtlas.Attribution;
using Microsoft.ML.ActivationAtlas.Binning;
using Microsoft.ML.ActivationAtlas.Datasets;
using Microsoft.ML.ActivationAtlas.Extraction;
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
/// The output folder is written as <c>&lt;out&gt;.partial</c> and renamed when complete. Finished stages, and pages of
/// <see cref="AtlasBuildOptions.PageRows"/> activation rows while extraction runs, go to the stage store, so the same
/// call after an interruption (even a killed process) continues where it stopped. A seeded build gives byte-identical
/// outputs (with the default <see cref="AtlasBuildOptions.DeterministicLayout"/>).
/// </remarks>
public sealed class AtlasBuilder
{
    private const string ActivationColumn = AtlasStages.Activation;
    private const string MeanColumn = "SpatialMean";
    private const string PositionColumn = "Position";
    private const string AttributionColumn = "Attribution";
    private const string ClassNamesEntry = "class-names.json";
    private const string LayoutEntry = "layout.zip";

    /// <summary>The store entry of a trained head's weights and biases ([classes, dim + 1]).</summary>
    internal const string HeadEntry = "head";

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
        ArgumentNullException.ThrowIfNull(options);
        var o = options.Clone();
        o.Validate();
        AtlasFolder.EnsureFree(outputFolder);
        var stage = new StageReporter(progress).Start("images");
        var images = ImageFolder.Scan(imageFolder, o.Samples, o.Seed, skipUnreadable: o.SkipUnreadableImages);
        stage.Done($"{images.Paths.Count:N0} images" + (images.Unreadable.Count > 0 ? $", {images.Unreadable.Count:N0} unreadable files skipped" : ""));
        return Build(images, outputFolder, o, progress, cancellationToken);
    }

    /// <summary>Builds the atlas of an image listing (e.g. a filtered <see cref="ImageFolder.Scan"/>) into <paramref name="outputFolder"/>.</summary>
    /// <param name="images">The images and their labels.</param>
    /// <param name="outputFolder">The atlas folder to create; it must not exist.</param>
    /// <param name="options">The settings (<see cref="AtlasBuildOptions.Samples"/> is not applied again).</param>
    /// <param name="progress">Receives each stage's progress (optional).</param>
    /// <param name="cancellationToken">Cancels the build; the work folder is kept for a later resume.</param>
    /// <returns>The built atlas, as <see cref="Open"/> reads it.</returns>
    public BuiltAtlas Build(ImageFolder images, string outputFolder, AtlasBuildOptions options, IProgress<AtlasBuildProgress>? progress = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(images);
        ArgumentNullException.ThrowIfNull(options);
        var o = options.Clone();
        o.Validate();
        if (images.Paths.Count < 5)
            throw new InvalidOperationException($"An atlas needs at least 5 images; '{images.Root}' has {images.Paths.Count}.");
        bool fresh = !Directory.Exists(AtlasFolder.WorkFolder(outputFolder));
        string work = AtlasFolder.PrepareWork(outputFolder);
        var run = new Run(_ml, o, images, o.StageStore ?? new FileStageStore(Path.Combine(work, AtlasFolder.CacheFolder)),
            new StageReporter(progress), cancellationToken);
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

    /// <summary>Opens a built atlas folder with every setting it was built with.</summary>
    /// <param name="folder">The folder <see cref="Build(string, string, AtlasBuildOptions, IProgress{AtlasBuildProgress}?, CancellationToken)"/> wrote.</param>
    /// <param name="stageStore">The store the build used, when not the default files in the folder.</param>
    public BuiltAtlas Open(string folder, IAtlasStageStore? stageStore = null) => BuiltAtlas.Open(_ml, folder, stageStore);

    /// <summary>One build: the stages in order, each reused from the store when it holds them.</summary>
    private sealed class Run(MLContext ml, AtlasBuildOptions o, ImageFolder images, IAtlasStageStore store, StageReporter report, CancellationToken ct)
    {
        private readonly int _rows = images.Paths.Count;
        private readonly string _imagesKey = $"{images.Fingerprint()}|{o.Samples}|{o.Seed}";
        private string ActivationKey => $"{_imagesKey}|{o.Model!.Description}|{o.Layer}|{o.Sampling}";

        /// <summary>The key of the extraction pass's entries (with an ONNX head, its attributions come from the same pass).</summary>
        private string ExtractionKey => ActivationKey + (o.Head == AtlasHeadKind.Model ? "|" + o.HeadModel!.Description : "");

        private string ClassesKey => o.Head == AtlasHeadKind.Model ? ExtractionKey : $"{ActivationKey}|{o.Head}";

        public void Execute(string work)
        {
            var extraction = ml.Transforms.ExtractActivations(ExtractionOptions(firstRow: 0)).Fit(Input(0));
            string layer = extraction.Layers[0].Name;
            var (activations, dim, means, attributions) = Extract(extraction);

            var (classNames, classValues, classValueName) = ClassValues(layer, activations, dim, means, attributions);
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

            string iconKey = $"{ActivationKey}|{o.NumberOfNeighbors}|{o.MinDist.ToString(CultureInfo.InvariantCulture)}|{o.DeterministicLayout}|{string.Join(",", o.GridSizes)}|{o.MinimumCount}|{o.IconSteps}|{o.IconSize}|{o.IconMinimumCount}";
            var icons = AtlasIconStep.Render(ml, atlas, images.Paths, o, layer, store, iconKey, report, ct);

            stage = report.Start("outputs");
            foreach (var sub in new[] { "icons", "examples", "classes" })
                if (Directory.Exists(Path.Combine(work, sub)))
                    Directory.Delete(Path.Combine(work, sub), true);
            string modelName = o.ModelName ?? o.Model!.BuiltInName ?? o.Model.Description;
            int imageGrid = o.ResolvedImageGridSize;
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
            });
            stage.Report(0.7);
            AtlasJsonWriter.Write(atlas, Path.Combine(work, "atlas.json"), modelName, o.Layer);
            // The fitted pipeline: image path -> activation -> layout -> grid cell, for new images (concept histograms).
            var pipeline = new TransformerChain<ITransformer>(extraction, umap, grid);
            ml.Model.SaveAtlas(pipeline, Input(0).Schema, Path.Combine(work, AtlasFolder.ModelFile));
            AtlasFolder.WriteJson(Path.Combine(work, AtlasFolder.RowsFile), new AtlasFolder.RowList(images.Root, images.Paths.ToArray(), images.Labels.ToArray()));
            AtlasFolder.WriteJson(Path.Combine(work, AtlasFolder.SettingsFile), new AtlasFolder.BuildSettings(modelName, o.Layer, o.GridSizes, classValueName, classNames)
            {
                MinimumCount = o.MinimumCount,
                Icons = o.Icons.ToString(),
                IconSize = o.IconSize,
                IconGrid = o.IconGridSize ?? imageGrid,
                ImageGrid = imageGrid,
                IconKey = o.Icons == AtlasIconKind.Inversion ? iconKey : null,
                ActivationsKey = ExtractionKey,
                ClassesKey = ClassesKey,
                Seed = o.Seed,
                SkippedCount = images.Unreadable.Count,
                Skipped = images.Unreadable.ToArray(),
            });
            stage.Done();
            extraction.Dispose();
        }

        /// <summary>The store entry of one page of a stage's rows.</summary>
        private static string PageEntry(string stage, int page) => $"{stage}.page{page.ToString("D5", CultureInfo.InvariantCulture)}";

        private IDataView Input(int firstRow) =>
            ml.Data.LoadFromEnumerable(images.Paths.Skip(firstRow).Select(p => new ImagePathRow { ImagePath = p }));

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

            var stage = report.Start("activations");
            var columns = new List<(string Stage, string Column)> { ("activations", ActivationColumn), ("positions", PositionColumn) };
            if (withMeans)
                columns.Add(("head-features", MeanColumn));
            if (withAttribution)
                columns.Add(("classes", AttributionColumn));
            int pageRows = o.PageRows, pages = (_rows + pageRows - 1) / pageRows;
            var parts = new float[columns.Count][][];
            var widths = new int[columns.Count];
            for (int c = 0; c < columns.Count; c++)
                parts[c] = new float[pages][];
            string Page(int c, int p) => PageEntry(columns[c].Stage, p);
            int PageSize(int p) => Math.Min(pageRows, _rows - p * pageRows);

            // Pages finished by an earlier, interrupted run.
            int first = 0;
            for (; first < pages; first++)
            {
                bool complete = true;
                for (int c = 0; c < columns.Count && complete; c++)
                {
                    complete = store.TryLoad(Page(c, first), key, out var v, out int r, out int w) && r == PageSize(first);
                    parts[c][first] = v;
                    widths[c] = w;
                }
                if (!complete)
                    break;
            }
            if (first < pages)
            {
                // The rest in one pass; positions depend on the row's index in the whole list, so the pass starts there.
                var part = first == 0 ? extraction : ml.Transforms.ExtractActivations(ExtractionOptions(first * (long)pageRows)).Fit(Input(0));
                var input = Input(first * pageRows);
                var data = part.Transform(input);
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
                    for (int p = first; p < pages; p++)
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
                            stage.Report((p * (double)pageRows + r + 1) / _rows);
                        }
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
            }

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
                    store.Delete(Page(c, p));
            stage.Done($"{_rows:N0} x {dim}");
            int Index(string s) => columns.FindIndex(c => c.Stage == s);
            return (whole[0], dim, withMeans ? whole[Index("head-features")] : null, withAttribution ? whole[Index("classes")] : null);
        }

        /// <summary>The class values of each row: label shares, or attributions to the classes of a head.</summary>
        private (string[] Names, float[] Values, string Kind) ClassValues(string layer, float[] activations, int dim, float[]? means, float[]? attributions)
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
                    // The head trains on the layer's spatial means, and reads the layer only through that mean: the
                    // attribution stage computes the attributions in closed form from the stored activations.
                    var stage = report.Start("head");
                    var weights = LinearHeadTrainer.TrainWeights(ml, means ?? activations, dim, images.Labels);
                    var names = weights.ClassNames;
                    // Kept for classifying new images with the same head (patch attacks).
                    store.Save(HeadEntry, ClassesKey, weights.Packed(), names.Length, dim + 1);
                    var head = LinearHeadTrainer.Attach(o.Model!, layer, weights);
                    stage.Done($"{names.Length} classes");
                    stage = report.Start("attribution");
                    var view = Matrices.View(_rows, (ActivationColumn, activations, dim));
                    using var attribution = ml.Transforms.ComputeAttribution(new AttributionEstimator.Options
                    {
                        Model = head,
                        Layer = layer,
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
