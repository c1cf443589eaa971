using System.Globalization;
using Microsoft.ML.ActivationAtlas.Building;
using Microsoft.ML.ActivationAtlas.Cluster;
using Microsoft.ML.ActivationAtlas.Extraction;
using Microsoft.ML.ActivationAtlas.Inversion.Objectives;

namespace Microsoft.ML.ActivationAtlas.Cli.Commands;

/// <summary><c>atlas build</c>: images and a model to an atlas image, an interactive viewer and the atlas data (<see cref="AtlasBuilder"/>).</summary>
internal sealed class BuildCommand : ICommand
{
    private static readonly string DefaultGrids = string.Join(",", AtlasBuildOptions.Defaults.GridSizes);

    public string Name => "build";

    public string Summary => "build an activation atlas of a layer from a folder of images";

    public string Usage => $"""
        usage: atlas build --model <file.onnx|resnet18> (--layer <name> | --layers <a,b,...>) --images <folder> --out <dir> [options]

          --layer <name>     the layer: a spatial [N, C, H, W] tensor, e.g. ReLU393_Output_0 for resnet18, or a vision
                             transformer's token layer (random patch tokens; see --token-layout), tensor or friendly name
          --layers <list>    linked atlases of several layers from one network pass: each image is read at the same
                             image location on every layer; <out>/layers/<layer>/ holds each layer's atlas and
                             <out>/index.html switches between them, marking where a selected cell's images landed
                             in the other layers (--head none or train); a vision transformer's token layers are
                             read at the same patch token (with layers of their patch grid only)
          --images <folder>  images, searched recursively; a first-level sub-folder name is the image's label
          --out <dir>        the atlas folder to create (must not exist)
          --samples <n>      images to use, a seeded random sample (default: all)
          --seed <n>         seed of the sampling, activation positions and UMAP (default {AtlasBuildOptions.Defaults.Seed})
          --sampling <s>     random (one random position per image, default) or mean (spatial mean)
          --neighbors <n>    UMAP neighbours (default {AtlasBuildOptions.Defaults.NumberOfNeighbors})
          --min-dist <x>     UMAP minimum distance (default {AtlasBuildOptions.Defaults.MinDist.ToString(CultureInfo.InvariantCulture)})
          --parallel-umap    optimise the layout on every core: faster, but not reproducible (default: deterministic,
                             so a seeded build gives byte-identical outputs)
          --grids <list>     nested grid sizes (default {DefaultGrids})
          --png-grid <n>     the grid drawn in atlas.png (default {AtlasBuildOptions.Defaults.ImageGridSize}, or the coarsest; when the icon
                             budget stops short of it, the finest grid whose cells are all inverted)
          --icon-size <px>   icon side in the viewer and atlas.png (default {AtlasBuildOptions.Defaults.IconSize})
          --icons <i>        inversion (default): feature-inversion icons of the cells' mean activations, coarse grid
                             to fine, each finer cell starting from its parent's icon, as far as --icon-budget allows
                             (the other cells show their nearest image, marked as stand-ins); examples: each cell
                             shows the image nearest its mean activation
          --icon-budget <t>  time for inverted icons, e.g. 90s, 10m, 1h or unlimited (default {AtlasBuildOptions.Defaults.IconBudget.TotalMinutes:0}m on
                             the CPU, unlimited with --cuda); no icon starts after it
          --icon-grid <n>    the finest grid whose cells get inverted icons (default: every grid)
          --icon-steps <n>   optimisation steps of a coarsest-grid icon; finer cells start from their parent's icon and
                             take a quarter of them (default {AtlasBuildOptions.Defaults.IconSteps})
          --icon-min-count <n>  cells with fewer images keep their example icon (default {AtlasBuildOptions.Defaults.IconMinimumCount})
          --icon-whitening <w>  whitening of the icons' objective, fitted from the atlas's rows: none (default),
                             second-moment (the article's: directions many images share count less) or zca; class
                             atlases, comparisons and patch attacks of the atlas invert with the same whitening
          --min-count <n>    cells with fewer images are left out (default {AtlasBuildOptions.Defaults.MinimumCount})
          --batch <n>        images per ONNX Runtime call (default {AtlasBuildOptions.Defaults.BatchSize})
          --page-rows <n>    activation rows per stored page, the unit an interrupted extraction resumes from (default {AtlasBuildOptions.Defaults.PageRows})
          --extract-only     run only the network pass and keep its pages in <out>.partial/cache, where the same
                             command without this option finds them (e.g. extract on a GPU node, build on a CPU one)
          --shard <k/n>      with --extract-only (implied): only part k (from 0) of n of the pages, so n machines
                             sharing the folder extract at once; then the same command without --shard builds from the
                             stored pages without running the network for them (see docs/sharded-jobs.md)
          --skip-unreadable  skip files that are not readable images (counted and listed in build.json) instead of failing
          --head <h>         class values of the cells: none (the label shares of the images, default), train (train a
                             linear head on the labelled images' spatially averaged layer, on a token layer the mean of
                             its patch tokens, and use the attribution to each class) or <file.onnx> (an ONNX classifier
                             containing the layer: attribution to its logits)
          --max-pool-relaxation  attribution through max pools averages over each pooling window (the article's
                             relaxation, for InceptionV1-style classifiers given by --head <file.onnx>)

        {ModelArguments.Usage}{ModelArguments.TokenUsage}
        Writes <out>/atlas.png, <out>/index.html (+ icons/, examples/, classes/), <out>/atlas.json, <out>/model.zip (the fitted pipeline),
        <out>/rows.json and <out>/build.json. Work happens in <out>.partial; rerunning the same command after an interruption
        reuses finished stages and the finished pages of the activations.
        """;

    public int Run(CommandArgs args, CancellationToken cancellationToken)
    {
        var model = ModelArguments.Model(args);
        string modelArg = args.Required("model");
        string imagesDir = args.Required("images");
        string outDir = args.Required("out");
        var options = new AtlasBuildOptions
        {
            Model = model,
            ModelName = model.BuiltInName ?? Path.GetFileName(modelArg),
            Layer = args.Optional("layer") ?? "",
            Session = ModelArguments.Session(args),
            Samples = args.Int("samples", 0, minimum: 0),
            Seed = args.Int("seed", AtlasBuildOptions.Defaults.Seed),
            Sampling = args.Optional("sampling") switch
            {
                null or "random" => ActivationSampling.RandomPosition,
                "mean" => ActivationSampling.SpatialMean,
                var s => throw new UsageException($"option --sampling: '{s}' is neither 'random' nor 'mean'"),
            },
            NumberOfNeighbors = args.Int("neighbors", AtlasBuildOptions.Defaults.NumberOfNeighbors, minimum: 1),
            MinDist = (float)args.Double("min-dist", AtlasBuildOptions.Defaults.MinDist),
            DeterministicLayout = !args.Has("parallel-umap"),
            MaxPoolRelaxation = args.Has("max-pool-relaxation"),
            GridSizes = ParseGrids(args.Optional("grids") ?? DefaultGrids),
            ImageGridSize = args.Has("png-grid") ? args.Int("png-grid", 0) : null,
            IconSize = args.Int("icon-size", AtlasBuildOptions.Defaults.IconSize, minimum: 1),
            Icons = args.Optional("icons") switch
            {
                "examples" => AtlasIconKind.Examples,
                null or "inversion" => AtlasIconKind.Inversion,
                var s => throw new UsageException($"option --icons: '{s}' is neither 'examples' nor 'inversion'"),
            },
            IconGridSize = args.Has("icon-grid") ? args.Int("icon-grid", 0) : null,
            IconBudget = args.Optional("icon-budget") is { } budget ? ParseDuration(budget, "icon-budget") : null,
            IconSteps = args.Int("icon-steps", AtlasBuildOptions.Defaults.IconSteps, minimum: 1),
            IconMinimumCount = args.Int("icon-min-count", AtlasBuildOptions.Defaults.IconMinimumCount, minimum: 1),
            IconWhitening = args.Optional("icon-whitening") switch
            {
                null or "none" => WhiteningKind.None,
                "second-moment" => WhiteningKind.SecondMomentInverse,
                "zca" => WhiteningKind.Zca,
                var s => throw new UsageException($"option --icon-whitening: '{s}' is not one of none, second-moment, zca"),
            },
            MinimumCount = args.Int("min-count", AtlasBuildOptions.Defaults.MinimumCount, minimum: 1),
            BatchSize = args.Int("batch", AtlasBuildOptions.Defaults.BatchSize, minimum: 1),
            PageRows = args.Int("page-rows", AtlasBuildOptions.Defaults.PageRows, minimum: 1),
            SkipUnreadableImages = args.Has("skip-unreadable"),
            Tokens = ModelArguments.Tokens(args),
        };
        string head = args.Optional("head") ?? "none";
        (options.Head, options.HeadModel) = head switch
        {
            "none" => (AtlasHeadKind.None, null),
            "train" => (AtlasHeadKind.Train, (ActivationModel?)null),
            _ when File.Exists(head) => (AtlasHeadKind.Model, ActivationModel.FromFile(head, model.Preprocessing, model.PreprocessingModelPath)),
            _ => throw new UsageException($"option --head: '{head}' is neither 'none', 'train' nor an existing ONNX classifier file"),
        };
        string? layersArg = args.Optional("layers");
        Shard? shard = HistogramCommand.ParseShard(args.Optional("shard"));
        bool extractOnly = args.Has("extract-only") || shard is not null;
        args.RejectUnknown();
        if (layersArg is null && options.Layer.Length == 0)
            throw new UsageException("missing required option --layer (or --layers <a,b,...> for linked atlases of several layers)");
        if (layersArg is not null && options.Layer.Length > 0)
            throw new UsageException("options --layer and --layers: give one of them");
        if (layersArg is not null && extractOnly)
            throw new UsageException("options --layers and --shard/--extract-only: a linked build's network pass is not sharded yet; shard a single --layer build");
        if (options.ImageGridSize is int png && !options.GridSizes.Contains(png))
            throw new UsageException($"option --png-grid: {png} is not one of the grids ({string.Join(",", options.GridSizes)})");
        if (options.IconGridSize is int iconGrid && !options.GridSizes.Contains(iconGrid))
            throw new UsageException($"option --icon-grid: {iconGrid} is not one of the grids ({string.Join(",", options.GridSizes)})");

        if (extractOnly)
        {
            var part = shard ?? Shard.Whole;
            AtlasShardExtraction extracted;
            using (var stages = new ConsoleStages())
                extracted = new MLContext(options.Seed).Atlas().ExtractShard(imagesDir, outDir, options, part, stages, cancellationToken);
            Console.Error.WriteLine($"atlas build: extraction shard {part}: {extracted.Pages} pages ({extracted.ComputedPages} computed, {extracted.Pages - extracted.ComputedPages} already stored) in {Path.GetFullPath(outDir).TrimEnd(Path.DirectorySeparatorChar)}.partial; " +
                "the same command without --extract-only/--shard builds the atlas from them");
            return 0;
        }

        var total = System.Diagnostics.Stopwatch.StartNew();
        if (layersArg is not null)
        {
            var layers = layersArg.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            Console.Error.WriteLine($"atlas build: {model.Description}, layers {string.Join(", ", layers)} -> {outDir}");
            LinkedAtlas linked;
            using (var stages = new ConsoleStages())
                linked = new MLContext(options.Seed).Atlas().BuildLayers(imagesDir, outDir, layers, options, stages, cancellationToken);
            Console.Error.WriteLine($"atlas build: done in {total.Elapsed.TotalSeconds:F1} s: {Path.Combine(outDir, "index.html")} ({linked.Layers.Count} linked layers)");
            return 0;
        }
        Console.Error.WriteLine($"atlas build: {model.Description}, layer {options.Layer} -> {outDir} (work folder {Path.GetFullPath(outDir).TrimEnd(Path.DirectorySeparatorChar)}.partial)");
        BuiltAtlas built;
        try
        {
            using var stages = new ConsoleStages();
            built = new MLContext(options.Seed).Atlas().Build(imagesDir, outDir, options, stages, cancellationToken);
        }
        catch (ArgumentException e) when (e.ParamName == nameof(AtlasBuildOptions.HeadModel) && e.InnerException is not null)
        {
            throw new ArgumentException($"--head '{head}': {e.InnerException.Message}", e);
        }
        if (built.SkippedImages.Count > 0)
            Console.Error.WriteLine($"atlas build: skipped {built.SkippedImages.Count:N0} unreadable files (listed in {Path.Combine(outDir, "build.json")}): " +
                string.Join(", ", built.SkippedImages.Take(5)) + (built.SkippedImages.Count > 5 ? ", ..." : ""));
        if (built.IconNote is { } note)
            Console.Error.WriteLine($"atlas build: {note}");
        Console.Error.WriteLine($"atlas build: done in {total.Elapsed.TotalSeconds:F1} s: {Path.Combine(outDir, "index.html")}");
        return 0;
    }

    /// <summary>The usage lines of the icon options of 'atlas class' and 'atlas compare'.</summary>
    internal const string SubsetIconUsage = """
          --icon-budget <t>   of an atlas with inverted icons: time for the cells' inverted icons (drawn with the settings
                              the atlas was built with), e.g. 90s, 10m or unlimited (default 10m on the CPU, unlimited with
                              --cuda); cells left show example stand-ins. An atlas with example icons gives example icons.
          --threads <n>       ONNX Runtime intra-op threads for the inversion (default: one per physical core)
          --cuda [--device <id>]  invert on CUDA (Gpu build), falling back to the CPU with a warning
        """;

    /// <summary>The icon options of 'atlas class' and 'atlas compare' (<see cref="SubsetIconUsage"/>).</summary>
    internal static SubsetIconOptions SubsetIcons(CommandArgs args) => new()
    {
        IconBudget = args.Optional("icon-budget") is { } budget ? ParseDuration(budget, "icon-budget") : null,
        Session = ModelArguments.Session(args),
    };

    /// <summary>A duration such as <c>90s</c>, <c>10m</c>, <c>1.5h</c> (a bare number is seconds), or <c>unlimited</c>; it must be positive.</summary>
    internal static TimeSpan ParseDuration(string text, string option)
    {
        string t = text.Trim().ToLowerInvariant();
        if (t is "unlimited" or "none" or "inf")
            return Timeout.InfiniteTimeSpan;
        double scale = t.EndsWith('h') ? 3600 : t.EndsWith('m') ? 60 : 1;
        string number = t.TrimEnd('h', 'm', 's');
        if (!double.TryParse(number, NumberStyles.Float, CultureInfo.InvariantCulture, out double value) || !double.IsFinite(value) || number.Length == 0)
            throw new UsageException($"option --{option}: '{text}' is not a duration such as 90s, 10m, 1h or unlimited");
        if (value <= 0)
            throw new UsageException($"option --{option}: '{text}' is not positive; give a duration such as 10m, or --icons examples for no inverted icons");
        return TimeSpan.FromSeconds(value * scale);
    }

    internal static int[] ParseGrids(string text, string option = "grids")
    {
        try
        {
            return text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(s => int.Parse(s, CultureInfo.InvariantCulture)).ToArray();
        }
        catch (Exception e) when (e is FormatException or OverflowException)
        {
            throw new UsageException($"option --{option}: '{text}' is not a comma-separated list of sizes");
        }
    }
}
