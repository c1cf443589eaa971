using System.Globalization;
using Microsoft.ML.ActivationAtlas.Binning;
using Microsoft.ML.ActivationAtlas.Cli.Building;
using Microsoft.ML.ActivationAtlas.Extraction;
using Microsoft.ML.ActivationAtlas.Projection;
using Microsoft.ML.ActivationAtlas.Rendering;
using Microsoft.ML.Data;
using Microsoft.ML.ActivationAtlas.Persistence;
using Microsoft.ML.ActivationAtlas.Attribution;

namespace Microsoft.ML.ActivationAtlas.Cli.Commands;

/// <summary><c>atlas build</c>: images and a model to an atlas image, an interactive viewer and the atlas data.</summary>
internal sealed class BuildCommand : ICommand
{
    public string Name => "build";

    public string Summary => "build an activation atlas of a layer from a folder of images";

    public string Usage => $"""
        usage: atlas build --model <file.onnx|resnet18> --layer <name> --images <folder> --out <dir> [options]

          --layer <name>     the 4-D layer tensor, e.g. ReLU393_Output_0 for resnet18
          --images <folder>  images, searched recursively; a first-level sub-folder name is the image's label
          --out <dir>        the atlas folder to create (must not exist)
          --samples <n>      images to use, a seeded random sample (default: all)
          --seed <n>         seed of the sampling, activation positions and UMAP (default 1)
          --sampling <s>     random (one random position per image, default) or mean (spatial mean)
          --neighbors <n>    UMAP neighbours (default 20)
          --min-dist <x>     UMAP minimum distance (default 0.01)
          --grids <list>     nested grid sizes (default 20,40,80,160)
          --png-grid <n>     the grid drawn in atlas.png (default 40, or the coarsest)
          --icon-size <px>   icon side in the viewer and atlas.png (default 64)
          --icons <i>        examples: each cell shows the image nearest its mean activation (default); inversion:
                             feature-inversion icons of the cells' mean activations on --icon-grid (slow on a CPU)
          --icon-grid <n>    the grid whose cells get inverted icons (default: --png-grid)
          --icon-steps <n>   optimisation steps per inverted icon (default 512)
          --icon-min-count <n>  cells with fewer images keep their example icon (default 1)
          --min-count <n>    cells with fewer images are left out (default 1)
          --batch <n>        images per ONNX Runtime call (default 32)
          --head <h>         class values of the cells: none (the label shares of the images, default), train (train a
                             linear head on the labelled images' spatially averaged layer and use the attribution to
                             each class) or <file.onnx> (an ONNX classifier containing the layer: attribution to its logits)
          --max-pool-relaxation  attribution through max pools averages over each pooling window (the article's
                             relaxation, for InceptionV1-style classifiers given by --head <file.onnx>)

        {ModelArguments.Usage}
        Writes <out>/atlas.png, <out>/index.html (+ icons/, examples/, classes/), <out>/atlas.json, <out>/model.zip (the fitted pipeline) and <out>/rows.json.
        Work happens in <out>.partial; rerunning the same command after an interruption reuses finished stages.
        """;

    public int Run(CommandArgs args, CancellationToken cancellationToken)
    {
        var model = ModelArguments.Model(args);
        var session = ModelArguments.Session(args);
        string modelArg = args.Required("model");
        string layer = args.Required("layer");
        string imagesDir = args.Required("images");
        string outDir = args.Required("out");
        int samples = args.Int("samples", 0);
        int seed = args.Int("seed", 1);
        string sampling = args.Optional("sampling") ?? "random";
        int neighbors = args.Int("neighbors", 20);
        double minDist = args.Double("min-dist", 0.01);
        int[] grids = ParseGrids(args.Optional("grids") ?? "20,40,80,160");
        int pngGrid = args.Int("png-grid", grids.Contains(40) ? 40 : grids.Min());
        int iconSize = args.Int("icon-size", 64);
        int minCount = args.Int("min-count", 1);
        int batch = args.Int("batch", 32);
        string head = args.Optional("head") ?? "none";
        bool maxPoolRelaxation = args.Has("max-pool-relaxation");
        string iconMode = args.Optional("icons") ?? "examples";
        int iconSteps = args.Int("icon-steps", 512);
        int iconMinCount = args.Int("icon-min-count", 1);
        int iconGrid = args.Int("icon-grid", pngGrid);
        args.RejectUnknown();
        if (iconMode is not ("examples" or "inversion"))
            throw new UsageException($"option --icons: '{iconMode}' is neither 'examples' nor 'inversion'");
        if (!grids.Contains(iconGrid))
            throw new UsageException($"option --icon-grid: {iconGrid} is not one of the grids ({string.Join(",", grids)})");
        if (sampling is not ("random" or "mean"))
            throw new UsageException($"option --sampling: '{sampling}' is neither 'random' nor 'mean'");
        if (!grids.Contains(pngGrid))
            throw new UsageException($"option --png-grid: {pngGrid} is not one of the grids ({string.Join(",", grids)})");
        _ = new GridLevels(grids);

        // Check everything that can be checked before any work.
        AtlasFolder.EnsureFree(outDir);
        ImageSet images;
        var total = System.Diagnostics.Stopwatch.StartNew();
        using (var p = new ConsoleProgress("images"))
        {
            images = ImageSet.Scan(imagesDir, samples, seed);
            p.Done($"{images.Paths.Count:N0} images");
        }
        if (images.Paths.Count < 5)
            throw new InvalidOperationException($"An atlas needs at least 5 images; '{imagesDir}' has {images.Paths.Count}.");
        string imagesKey = $"{images.Fingerprint()}|{samples}|{seed}";

        // Activations: images -> ResNet/ONNX layer, one row per image.
        var ml = new MLContext(seed);
        var input = ml.Data.LoadFromEnumerable(images.Paths.Select(p => new ImageRow { ImagePath = p }));
        var (width, height) = InputSize(model);
        var extraction = ml.Transforms.LoadImages("Image", null, "ImagePath")
            .Append(ml.Transforms.ResizeImages("Image", width, height, "Image"))
            .Append(ml.Transforms.ExtractActivations(new ActivationExtractingEstimator.Options
            {
                Model = model,
                Layers = [layer],
                OutputColumnNames = ["Activation"],
                Sampling = sampling == "mean" ? ActivationSampling.SpatialMean : ActivationSampling.RandomPosition,
                Seed = seed,
                BatchSize = batch,
                ImagePathColumnName = "ImagePath",
                Session = session,
            }))
            .Fit(input);
        // The layer exists (the extraction's fit checked it): the work folder can be made.
        string work = AtlasFolder.PrepareWork(outDir);
        var cache = new StageCache(Path.Combine(work, AtlasFolder.CacheFolder));
        Console.Error.WriteLine($"atlas build: {model.Description}, layer {layer} -> {outDir} (work folder {work})");
        string actKey = $"{imagesKey}|{model.Description}|{layer}|{sampling}";
        var positionList = new List<int>();
        if (!cache.TryLoad("activations", actKey, out var activations, out int rows, out int dim) || !cache.TryLoad("positions", actKey, out _, out _, out _))
        {
            using var p = new ConsoleProgress("activations");
            if (head == "train" && sampling == "random")
            {
                // The head trains on the layer's spatial means: one pass over every position gives those and each
                // image's randomly placed vector (the same position the extraction stage itself would choose).
                var sampler = ((ActivationExtractingTransformer)extraction.LastTransformer).Engine.Sampler;
                var everywhere = ml.Transforms.LoadImages("Image", null, "ImagePath")
                    .Append(ml.Transforms.ResizeImages("Image", width, height, "Image"))
                    .Append(ml.Transforms.ExtractActivations(new ActivationExtractingEstimator.Options
                    {
                        Model = model, Layers = [layer], OutputColumnNames = ["Activation"], Sampling = ActivationSampling.AllPositions,
                        BatchSize = batch, ImagePathColumnName = "ImagePath", Session = session,
                    }))
                    .Fit(input);
                float[] means;
                (activations, means, rows, dim) = ReadSampledAndMeans(everywhere.Transform(input), sampler, images.Paths.Count, p, cancellationToken, positionList);
                cache.Save("head-features", actKey, means, rows, dim);
            }
            else
            {
                (activations, rows, dim) = ReadWithProgress(extraction.Transform(input), "Activation", images.Paths.Count, p, cancellationToken, positions: positionList);
            }
            cache.Save("positions", actKey, positionList.Select(v => (float)v).ToArray(), rows, 2);
            cache.Save("activations", actKey, activations, rows, dim);
            p.Done($"{rows:N0} x {dim}");
        }
        else
            Console.Error.WriteLine($"  activations  reused ({rows:N0} x {dim})");
        if (rows != images.Paths.Count)
            throw new InvalidOperationException($"Extraction returned {rows} rows for {images.Paths.Count} images.");


        // Class values: attribution to each class of a classifier head (--head), or the label shares of the images.
        string[] classNames;
        float[] classValues;
        string classValueName;
        string classKey = maxPoolRelaxation ? $"{actKey}|{head}|relaxed" : $"{actKey}|{head}";
        bool attributedByWeights = false;
        var headModel = head switch
        {
            "none" => null,
            "train" => (ActivationModel?)null,
            _ => File.Exists(head) ? ActivationModel.FromFile(head, model.Preprocessing, model.PreprocessingModelPath)
                : throw new FileNotFoundException($"The class head '{head}' is neither 'train', 'none' nor an existing ONNX classifier file."),
        };
        if (head == "none")
        {
            classNames = images.Labels.Where(l => l.Length > 0).Distinct().Order(StringComparer.Ordinal).ToArray();
            classValues = new float[rows * classNames.Length];
            for (int i = 0; i < rows && classNames.Length > 0; i++)
            {
                int k = Array.IndexOf(classNames, images.Labels[i]);
                if (k >= 0)
                    classValues[i * classNames.Length + k] = 1f;
            }
            classValueName = "label share";
        }
        else
        {
            if (head == "train")
            {
                // The head's training features: the layer's spatial mean per image (from the activations pass, or the
                // activations themselves with --sampling mean, or one more pass of the network when not cached).
                if (sampling == "mean")
                    cache.Save("head-features", actKey, activations, rows, dim);
                if (!cache.TryLoad("head-features", actKey, out var features, out _, out int fdim))
                {
                    using var p = new ConsoleProgress("head input");
                    var meanExtraction = ml.Transforms.LoadImages("Image", null, "ImagePath")
                        .Append(ml.Transforms.ResizeImages("Image", width, height, "Image"))
                        .Append(ml.Transforms.ExtractActivations(new ActivationExtractingEstimator.Options
                        {
                            Model = model, Layers = [layer], OutputColumnNames = ["Activation"], Sampling = ActivationSampling.SpatialMean,
                            BatchSize = batch, ImagePathColumnName = "ImagePath", Session = session,
                        }));
                    (features, _, fdim) = ReadWithProgress(meanExtraction.Fit(input).Transform(input), "Activation", rows, p, cancellationToken);
                    cache.Save("head-features", actKey, features, rows, fdim);
                    p.Done();
                }
                using (var p = new ConsoleProgress("head"))
                {
                    headModel = ClassHead.Train(ml, model, layer, features, fdim, images.Labels, out var trainedNames, out var weights);
                    p.Done($"{trainedNames.Length} classes");
                    if (!cache.TryLoad("classes", classKey, out _, out _, out _) || !File.Exists(Path.Combine(cache.Folder, "class-names.json")))
                    {
                        // The trained head reads the layer only through its spatial mean: the attributions follow from the
                        // stored activation vectors and the head's weights, with no further pass of the network.
                        var extractor = (ActivationExtractingTransformer)extraction.LastTransformer;
                        var info = extractor.Layers[0];
                        var direct = ClassHead.Attribute(activations, rows, weights, info.Height * info.Width);
                        AtlasFolder.WriteJson(Path.Combine(cache.Folder, "class-names.json"), trainedNames);
                        cache.Save("classes", classKey, direct, rows, trainedNames.Length);
                        Console.Error.WriteLine($"  attribution  from the head's weights ({trainedNames.Length} classes)");
                        attributedByWeights = true;
                    }
                }
            }
            if (!cache.TryLoad("classes", classKey, out classValues, out _, out int k) || !File.Exists(Path.Combine(cache.Folder, "class-names.json")))
            {
                using var p = new ConsoleProgress("attribution");
                // Attribution at each row's own position (cached by the activations stage).
                cache.TryLoad("positions", actKey, out var pos, out _, out _);
                var positioned = ml.Data.LoadFromEnumerable(
                    images.Paths.Select((path, i) => new PositionedImageRow { ImagePath = path, Position = [(int)pos[2 * i], (int)pos[2 * i + 1]] }),
                    PositionedImageRow.Schema());
                ITransformer attributionModel;
                try
                {
                    attributionModel = ml.Transforms.LoadImages("Image", null, "ImagePath")
                        .Append(ml.Transforms.ResizeImages("Image", width, height, "Image"))
                        .Append(ml.Transforms.ComputeAttribution(new AttributionEstimator.Options
                        {
                            Model = headModel, Layer = layer, OutputColumnName = "Attribution", BatchSize = batch, Session = session,
                            MaxPoolRelaxation = maxPoolRelaxation,
                        }))
                        .Fit(positioned);
                }
                catch (ArgumentException e) when (head != "train")
                {
                    throw new ArgumentException($"--head '{head}': {e.Message}", e);
                }
                var attribution = attributionModel.Transform(positioned);
                (classValues, _, k) = ReadWithProgress(attribution, "Attribution", rows, p, cancellationToken);
                VBuffer<ReadOnlyMemory<char>> slotNames = default;
                attribution.Schema["Attribution"].GetSlotNames(ref slotNames);
                AtlasFolder.WriteJson(Path.Combine(cache.Folder, "class-names.json"), slotNames.DenseValues().Select(x => x.ToString()).ToArray());
                cache.Save("classes", classKey, classValues, rows, k);
                p.Done($"{k} classes");
            }
            else if (!attributedByWeights)
                Console.Error.WriteLine($"  attribution  reused ({k} classes)");
            classNames = System.Text.Json.JsonSerializer.Deserialize<string[]>(File.ReadAllText(Path.Combine(cache.Folder, "class-names.json")))!;
            classValueName = "attribution";
        }
        if (head == "none")
            cache.Save("classes", classKey, classValues, rows, classNames.Length);

        // Layout: UMAP of the activations (cosine), fitted once and kept as a stage model.
        var activationView = Matrices.View(rows, ("Activation", activations, dim));
        string layoutKey = $"{actKey}|umap|{neighbors}|{minDist.ToString(CultureInfo.InvariantCulture)}|{seed}";
        string layoutModel = Path.Combine(cache.Folder, "layout.zip");
        UmapTransformer umap;
        if (cache.IsDone("layout", layoutKey) && File.Exists(layoutModel))
        {
            umap = ((IEnumerable<ITransformer>)ml.Model.LoadAtlas(layoutModel, out _)).OfType<UmapTransformer>().Single();
            Console.Error.WriteLine("  umap         reused");
        }
        else
        {
            using var p = new ConsoleProgress("umap");
            umap = ml.Transforms.ProjectToUmap(new UmapEstimator.Options
            {
                OutputColumnName = "Layout",
                InputColumnName = "Activation",
                // Small folders: UMAP needs more rows than neighbours.
                NumberOfNeighbors = Math.Min(neighbors, rows - 1),
                MinDist = (float)minDist,
                Metric = DistanceMetric.Cosine,
                Seed = seed,
                Progress = new SyncProgress<ProjectionProgress>(x => p.Report(x.Fraction)),
                CancellationToken = cancellationToken,
            }).Fit(activationView);
            umap.Progress = null;
            ml.Model.SaveAtlas(new TransformerChain<ITransformer>(umap), activationView.Schema, layoutModel);
            cache.MarkDone("layout", layoutKey);
            p.Done();
        }
        var layout = Matrices.Read(umap.Transform(activationView), "Layout", out _, out _, cancellationToken);

        // Grid and aggregation.
        GridAtlas atlas;
        BinToGridTransformer grid;
        using (var p = new ConsoleProgress("grid"))
        {
            var view = Matrices.View(rows, ("Activation", activations, dim), ("Layout", layout, 2), ("Labels", classValues, classNames.Length));
            grid = ml.Transforms.BinToGrid(new BinToGridEstimator.Options { GridSizes = grids }).Fit(view);
            atlas = ml.Data.AggregateAtlas(grid.Transform(view), new AtlasAggregationOptions
            {
                AttributionColumnName = classNames.Length > 0 ? "Labels" : null,
                ClassNames = classNames,
                MinimumCount = minCount,
            }, p, cancellationToken);
            p.Done(string.Join(", ", atlas.Levels.Select(l => $"{l.GridSize}: {l.Cells.Count} cells")));
        }

        // Icons: each cell's nearest example image; with --icons inversion, feature-inversion icons of the cells'
        // mean activations on the --icon-grid grid (cached cell by cell).
        AtlasIcons icons;
        using (var p = new ConsoleProgress("icons"))
        {
            icons = AtlasIcons.FromNearestExamples(atlas, row => images.Paths[row], iconSize);
            p.Done($"{icons.Count:N0} example icons");
        }
        if (iconMode == "inversion")
        {
            using var p = new ConsoleProgress("inversion");
            string iconKey = $"{layoutKey}|{string.Join(",", grids)}|{minCount}|{iconSteps}|{iconSize}|{iconMinCount}";
            int n = InvertedIcons.Render(ml, atlas.Level(iconGrid), icons, model, layer, iconSteps, Math.Max(iconSize, 32), iconMinCount, seed, session,
                cache.Folder, iconKey, p, cancellationToken);
            p.Done($"{n:N0} icons of the {iconGrid}x{iconGrid} grid");
        }

        // Outputs, written into the work folder, which becomes <out> when complete.
        using (var p = new ConsoleProgress("outputs"))
        {
            foreach (var sub in new[] { "icons", "examples", "classes" })
                if (Directory.Exists(Path.Combine(work, sub)))
                    Directory.Delete(Path.Combine(work, sub), true);
            string modelName = model.BuiltInName ?? Path.GetFileName(modelArg);
            AtlasImageRenderer.Render(atlas, icons, Path.Combine(work, "atlas.png"), new AtlasImageOptions { GridSize = pngGrid, CellPixels = Math.Max(16, Math.Min(iconSize, 8192 / pngGrid)) });
            p.Report(0.2);
            AtlasViewerWriter.WriteInto(atlas, icons, work, new AtlasViewerOptions
            {
                Title = $"Activation atlas of {modelName} {layer}",
                ModelName = modelName,
                LayerName = layer,
                IconPixels = iconSize,
                ClassValueName = classValueName,
                ImagePathOfRow = row => images.Paths[row],
            });
            p.Report(0.7);
            AtlasJsonWriter.Write(atlas, Path.Combine(work, "atlas.json"), modelName, layer);
            // The fitted pipeline: image path -> activation -> layout -> grid cell, for new images (atlas histogram).
            var pipeline = new TransformerChain<ITransformer>(((IEnumerable<ITransformer>)extraction).Append(umap).Append(grid).ToArray());
            ml.Model.SaveAtlas(pipeline, input.Schema, Path.Combine(work, AtlasFolder.ModelFile));
            AtlasFolder.WriteJson(Path.Combine(work, AtlasFolder.RowsFile), new AtlasFolder.RowList(images.Root, images.Paths.ToArray(), images.Labels.ToArray()));
            AtlasFolder.WriteJson(Path.Combine(work, AtlasFolder.SettingsFile), new AtlasFolder.BuildSettings(modelName, layer, grids, classValueName, classNames, iconSize));
            p.Done();
        }
        AtlasFolder.Complete(work, outDir);
        Console.Error.WriteLine($"atlas build: done in {total.Elapsed.TotalSeconds:F1} s: {Path.Combine(outDir, "index.html")}");
        return 0;
    }

    /// <summary>Reads a float-vector column, reporting progress per row.</summary>
    internal static (float[] Data, int Rows, int Dim) ReadWithProgress(IDataView data, string columnName, int expectedRows, IProgress<double> progress,
        CancellationToken cancellationToken, List<int>? positions = null)
    {
        var column = data.Schema[columnName];
        var positionColumn = positions is null ? (DataViewSchema.Column?)null : data.Schema["Position"];
        int dim = ((VectorDataViewType)column.Type).Size;
        var values = new List<float>(expectedRows * Math.Max(dim, 1));
        using var cursor = data.GetRowCursor(positionColumn is { } pc ? [column, pc] : [column]);
        var getter = cursor.GetGetter<VBuffer<float>>(column);
        var positionGetter = positionColumn is { } pcol ? cursor.GetGetter<VBuffer<int>>(pcol) : null;
        VBuffer<int> position = default;
        VBuffer<float> row = default;
        int rows = 0;
        while (cursor.MoveNext())
        {
            cancellationToken.ThrowIfCancellationRequested();
            getter(ref row);
            dim = row.Length;
            values.AddRange(row.DenseValues());
            if (positionGetter is not null)
            {
                positionGetter(ref position);
                positions!.Add(position.GetItemOrDefault(0));
                positions.Add(position.GetItemOrDefault(1));
            }
            progress.Report(++rows / (double)Math.Max(1, expectedRows));
        }
        return (values.ToArray(), rows, dim);
    }

    /// <summary>
    /// Reads an every-position extraction (rows in image order, positions in row-major order) into one vector per image,
    /// at the position <paramref name="sampler"/> chooses for it, and the spatial mean per image.
    /// </summary>
    internal static (float[] Sampled, float[] Means, int Rows, int Dim) ReadSampledAndMeans(IDataView everyPosition, ActivationSampler sampler,
        int expectedImages, IProgress<double> progress, CancellationToken cancellationToken, List<int> positions)
    {
        var column = everyPosition.Schema["Activation"];
        int dim = ((VectorDataViewType)column.Type).Size;
        int perImage = sampler.GridHeight * sampler.GridWidth;
        var sampled = new List<float>(expectedImages * dim);
        var means = new List<float>(expectedImages * dim);
        var sum = new double[dim];
        using var cursor = everyPosition.GetRowCursor([column, everyPosition.Schema["Position"]]);
        var getter = cursor.GetGetter<VBuffer<float>>(column);
        var positionGetter = cursor.GetGetter<VBuffer<int>>(everyPosition.Schema["Position"]);
        VBuffer<float> row = default;
        VBuffer<int> position = default;
        Span<int> chosenY = stackalloc int[1], chosenX = stackalloc int[1];
        long count = 0;
        int image = 0;
        while (cursor.MoveNext())
        {
            cancellationToken.ThrowIfCancellationRequested();
            int k = (int)(count++ % perImage);
            if (k == 0)
            {
                sampler.Positions(image, chosenY, chosenX);
                positions.Add(chosenY[0]);
                positions.Add(chosenX[0]);
                Array.Clear(sum);
            }
            getter(ref row);
            positionGetter(ref position);
            ReadOnlySpan<float> values = row.IsDense ? row.GetValues() : row.DenseValues().ToArray();
            for (int c = 0; c < dim; c++)
                sum[c] += values[c];
            if (position.GetItemOrDefault(0) == chosenY[0] && position.GetItemOrDefault(1) == chosenX[0])
                sampled.AddRange(values);
            if (k == perImage - 1)
            {
                for (int c = 0; c < dim; c++)
                    means.Add((float)(sum[c] / perImage));
                image++;
                progress.Report(image / (double)Math.Max(1, expectedImages));
            }
        }
        if (count % perImage != 0 || sampled.Count != image * dim)
            throw new InvalidOperationException($"The every-position extraction returned {count} rows, not {perImage} per image.");
        return (sampled.ToArray(), means.ToArray(), image, dim);
    }

    internal static (int Width, int Height) InputSize(ActivationModel model)
    {
        var input = model.Network.Graph.Input.FirstOrDefault();
        var dims = input?.Type?.TensorType?.Shape?.Dim;
        if (dims is { Count: 4 } && dims[2].DimValue > 0 && dims[3].DimValue > 0)
            return ((int)dims[3].DimValue, (int)dims[2].DimValue);
        return (224, 224);
    }

    private static int[] ParseGrids(string text)
    {
        try
        {
            return text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(s => int.Parse(s, CultureInfo.InvariantCulture)).ToArray();
        }
        catch (FormatException)
        {
            throw new UsageException($"option --grids: '{text}' is not a comma-separated list of sizes");
        }
    }

    internal sealed class PositionedImageRow
    {
        public string ImagePath { get; set; } = "";

        public int[] Position { get; set; } = [];

        public static SchemaDefinition Schema()
        {
            var s = SchemaDefinition.Create(typeof(PositionedImageRow));
            s[nameof(Position)].ColumnType = new VectorDataViewType(NumberDataViewType.Int32, 2);
            return s;
        }
    }

    internal sealed class ImageRow
    {
        public string ImagePath { get; set; } = "";
    }

    /// <summary>Reports on the calling thread (Progress&lt;T&gt; posts to a thread pool and can report after the stage ended).</summary>
    internal sealed class SyncProgress<T>(Action<T> report) : IProgress<T>
    {
        public void Report(T value) => report(value);
    }
}
