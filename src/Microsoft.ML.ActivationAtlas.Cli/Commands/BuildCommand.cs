using System.Globalization;
using Microsoft.ML.ActivationAtlas.Binning;
using Microsoft.ML.ActivationAtlas.Cli.Building;
using Microsoft.ML.ActivationAtlas.Extraction;
using Microsoft.ML.ActivationAtlas.Projection;
using Microsoft.ML.ActivationAtlas.Rendering;
using Microsoft.ML.Data;

namespace Microsoft.ML.ActivationAtlas.Cli.Commands;

/// <summary><c>atlas build</c>: images and a model to an atlas image, an interactive viewer and the atlas data.</summary>
internal sealed class BuildCommand : ICommand
{
    public string Name => "build";

    public string Summary => "build an activation atlas of a layer from a folder of images";

    public string Usage => """
        usage: atlas build --model <file.onnx|resnet18> --layer <name> --images <folder> --out <dir> [options]

          --model <m>        an ONNX CNN (input [N,3,H,W]) or 'resnet18' (the ImageNet ResNet18 of ML.NET)
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
          --min-count <n>    cells with fewer images are left out (default 1)
          --batch <n>        images per ONNX Runtime call (default 32)

        Writes <out>/atlas.png, <out>/index.html (+ icons/, examples/, classes/), <out>/atlas.json and <out>/rows.json.
        Work happens in <out>.partial; rerunning the same command after an interruption reuses finished stages.
        """;

    public int Run(CommandArgs args, CancellationToken cancellationToken)
    {
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
        args.RejectUnknown();
        if (sampling is not ("random" or "mean"))
            throw new UsageException($"option --sampling: '{sampling}' is neither 'random' nor 'mean'");
        if (!grids.Contains(pngGrid))
            throw new UsageException($"option --png-grid: {pngGrid} is not one of the grids ({string.Join(",", grids)})");
        _ = new GridLevels(grids);

        var model = PretrainedModels.ByName(modelArg)
            ?? (File.Exists(modelArg) ? ActivationModel.FromFile(modelArg) : throw new FileNotFoundException($"The model '{modelArg}' is neither 'resnet18' nor an existing ONNX file."));
        string work = AtlasFolder.PrepareWork(outDir);
        var cache = new StageCache(Path.Combine(work, AtlasFolder.CacheFolder));
        var total = System.Diagnostics.Stopwatch.StartNew();
        Console.Error.WriteLine($"atlas build: {model.Description}, layer {layer} -> {outDir} (work folder {work})");

        // 1. Images.
        ImageFolder images;
        using (var p = new ConsoleProgress("images"))
        {
            images = ImageFolder.Scan(imagesDir, samples, seed);
            p.Done($"{images.Paths.Count:N0} images");
        }
        string imagesKey = $"{images.Fingerprint()}|{samples}|{seed}";

        // 2. Activations.
        var ml = new MLContext(seed);
        string actKey = $"{imagesKey}|{model.Description}|{layer}|{sampling}";
        if (!cache.TryLoad("activations", actKey, out var activations, out int rows, out int dim))
        {
            using var p = new ConsoleProgress("activations");
            (activations, rows, dim) = Extract(ml, model, layer, images, sampling, seed, batch, p, cancellationToken);
            cache.Save("activations", actKey, activations, rows, dim);
            p.Done($"{rows:N0} x {dim}");
        }
        else
            Console.Error.WriteLine($"  activations  reused from {cache.Folder} ({rows:N0} x {dim})");
        if (rows != images.Paths.Count)
            throw new InvalidOperationException($"Extraction returned {rows} rows for {images.Paths.Count} images.");

        // 3. Class values: the labels (sub-folder names) as one-hot scores.
        var classNames = images.Labels.Where(l => l.Length > 0).Distinct().Order(StringComparer.Ordinal).ToArray();
        float[]? classValues = null;
        if (classNames.Length > 0)
        {
            classValues = new float[rows * classNames.Length];
            for (int i = 0; i < rows; i++)
            {
                int k = Array.IndexOf(classNames, images.Labels[i]);
                if (k >= 0)
                    classValues[i * classNames.Length + k] = 1f;
            }
        }

        // 4. Layout.
        string layoutKey = $"{actKey}|umap|{neighbors}|{minDist.ToString(CultureInfo.InvariantCulture)}|{seed}";
        if (!cache.TryLoad("layout", layoutKey, out var layout, out _, out _))
        {
            using var p = new ConsoleProgress("umap");
            var options = Projection.Umap.UmapOptions.ForAtlas with { Neighbors = neighbors, MinDist = (float)minDist, Seed = seed };
            var umap = new Projection.Umap.UmapReducer(options).Fit(activations, rows, dim, new SyncProgress<ProjectionProgress>(x => p.Report(x.Fraction)), cancellationToken);
            layout = umap.Embedding;
            cache.Save("layout", layoutKey, layout, rows, 2);
            p.Done();
        }
        else
            Console.Error.WriteLine("  umap         reused");

        // 5. Grid.
        GridAtlas atlas;
        using (var p = new ConsoleProgress("grid"))
        {
            var codes = GridBinner.FinestCodes(layout, GridNormalization.Fit(layout, 1, 99, 0.1f), new GridLevels(grids), cancellationToken);
            atlas = GridAggregator.Aggregate(codes, activations, dim, classValues, classNames.Length, new GridLevels(grids),
                new GridAggregator.Settings(minCount, 5, 4, classNames), p, cancellationToken);
            p.Done($"{string.Join(", ", atlas.Levels.Select(l => $"{l.GridSize}: {l.Cells.Count} cells"))}");
        }

        // 6. Icons: each cell's nearest example image.
        AtlasIcons icons;
        using (var p = new ConsoleProgress("icons"))
        {
            icons = AtlasIcons.FromNearestExamples(atlas, row => images.Paths[row], iconSize);
            p.Done($"{icons.Count:N0} icons");
        }

        // 7. Outputs, written into the work folder, which becomes <out> when complete.
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
                ImagePathOfRow = row => images.Paths[row],
            });
            p.Report(0.8);
            AtlasJsonWriter.Write(atlas, Path.Combine(work, "atlas.json"), modelName, layer);
            AtlasFolder.WriteJson(Path.Combine(work, AtlasFolder.RowsFile), new AtlasFolder.RowList(images.Root, images.Paths.ToArray(), images.Labels.ToArray()));
            AtlasFolder.WriteJson(Path.Combine(work, AtlasFolder.SettingsFile), new AtlasFolder.BuildSettings(modelName, layer, grids, "label share", classNames));
            p.Done();
        }
        AtlasFolder.Complete(work, outDir);
        Console.Error.WriteLine($"atlas build: done in {total.Elapsed.TotalSeconds:F1} s: {Path.Combine(outDir, "index.html")}");
        return 0;
    }

    private static (float[] Data, int Rows, int Dim) Extract(MLContext ml, ActivationModel model, string layer, ImageFolder images,
        string sampling, int seed, int batch, IProgress<double> progress, CancellationToken cancellationToken)
    {
        var (width, height) = InputSize(model);
        var input = ml.Data.LoadFromEnumerable(images.Paths.Select(p => new ImageRow { ImagePath = p }));
        var pipeline = ml.Transforms.LoadImages("Image", null, "ImagePath")
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
            }));
        var transformed = pipeline.Fit(input).Transform(input);
        var column = transformed.Schema["Activation"];
        int dim = ((VectorDataViewType)column.Type).Size;
        var data = new List<float>(images.Paths.Count * Math.Max(dim, 1));
        using var cursor = transformed.GetRowCursor([column]);
        var getter = cursor.GetGetter<VBuffer<float>>(column);
        VBuffer<float> row = default;
        int rows = 0;
        while (cursor.MoveNext())
        {
            cancellationToken.ThrowIfCancellationRequested();
            getter(ref row);
            dim = row.Length;
            data.AddRange(row.DenseValues());
            progress.Report(++rows / (double)images.Paths.Count);
        }
        return (data.ToArray(), rows, dim);
    }

    private static (int Width, int Height) InputSize(ActivationModel model)
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

    private sealed class ImageRow
    {
        public string ImagePath { get; set; } = "";
    }

    /// <summary>Reports on the calling thread (Progress&lt;T&gt; posts to a thread pool and can report after the stage ended).</summary>
    private sealed class SyncProgress<T>(Action<T> report) : IProgress<T>
    {
        public void Report(T value) => report(value);
    }
}
