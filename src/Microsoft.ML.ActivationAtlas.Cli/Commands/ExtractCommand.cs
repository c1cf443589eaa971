using System.Diagnostics;
using Microsoft.ML.ActivationAtlas.Cluster;
using Microsoft.ML.ActivationAtlas.Extraction;

namespace Microsoft.ML.ActivationAtlas.Cli.Commands;

/// <summary><c>atlas extract</c>: activations of a folder of images, written as .npy plus CSV/JSON sidecars.</summary>
internal sealed class ExtractCommand : ICommand
{
    public string Name => "extract";

    public string Summary => "extract layer activations of a folder of images to .npy (+ .rows.csv, .json)";

    public string Usage =>
        "usage: atlas extract --model <file.onnx|resnet18> --layer <name>[,<name>...] --images <folder> --out <file.npy> [options]\n" +
        ModelArguments.Usage +
        "  --layer <names>                layer tensor or friendly names, comma-separated (see atlas layers)\n" +
        "  --images <folder>              images; labels are the first-level sub-folder names\n" +
        "  --out <file.npy>               float32 [rows, channels]; several layers: <stem>.<layer>.npy each;\n" +
        "                                 sidecars <stem>.rows.csv (row,image,label,y,x) and <stem>.json (settings)\n" +
        "  --sampling <mode>              random (default) | all | mean | center | class-token (ViT token layers)\n" +
        ModelArguments.TokenUsage +
        "  --seed <n>                     random position seed (default 0)\n" +
        "  --margin <n>                   positions excluded at each edge for random (default 1)\n" +
        "  --batch <n>                    images per ONNX Runtime call (default 32)\n" +
        "  --per-class <n>                at most n images per sub-folder (default all)\n" +
        "  --skip-bad                     skip unreadable images (counted) instead of failing\n" +
        "  --shard <k/n>                  extract only part k (from 0) of n of the image list into the folder --out\n" +
        "                                 (activations.npy, its sidecars, shard.json); 'atlas merge --out <file.npy>'\n" +
        "                                 concatenates the parts into what one run writes (see docs/sharded-jobs.md)\n";

    public int Run(CommandArgs args, CancellationToken cancellationToken)
    {
        var model = ModelArguments.Model(args);
        var session = ModelArguments.Session(args);
        var layers = args.Required("layer").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        string folder = args.Required("images");
        string output = args.Required("out");
        var sampling = args.Optional("sampling") switch
        {
            null or "random" => ActivationSampling.RandomPosition,
            "all" => ActivationSampling.AllPositions,
            "mean" => ActivationSampling.SpatialMean,
            "center" => ActivationSampling.Center,
            "class-token" => ActivationSampling.ClassToken,
            var s => throw new UsageException($"--sampling: unknown '{s}' (random, all, mean, center, class-token)"),
        };
        int seed = args.Int("seed", 0), margin = args.Int("margin", 1), batch = args.Int("batch", 32), perClass = args.Int("per-class", 0);
        bool skipBad = args.Has("skip-bad");
        var tokens = ModelArguments.Tokens(args);
        Shard? shard = HistogramCommand.ParseShard(args.Optional("shard"));
        args.RejectUnknown();
        if (batch < 1)
            throw new UsageException("--batch must be at least 1");

        var images = Datasets.ImageFolder.Scan(folder, perLabel: perClass, checkReadable: false);
        var ml = new MLContext(seed: seed);
        var options = new ActivationExtractingEstimator.Options
        {
            Model = model,
            Layers = layers,
            Sampling = sampling,
            Seed = seed,
            Margin = margin,
            BatchSize = batch,
            BadRows = skipBad ? BadRowHandling.Skip : BadRowHandling.Fail,
            Session = session,
            Tokens = tokens,
        };
        var sw = Stopwatch.StartNew();
        ActivationExportResult result;
        using (var stages = new ConsoleStages())
            result = shard is { } part
                ? ShardedExtraction.WriteShard(ml, images, options, part, output, stages, cancellationToken)
                : ActivationExport.Write(ml, images, options, output, stages, cancellationToken);
        int extracted = (int)(shard is { } sh ? sh.End(images.Paths.Count) - sh.Start(images.Paths.Count) : images.Paths.Count);
        Console.Error.WriteLine($"atlas extract: {(shard is { } k ? $"shard {k}: " : "")}{result.Rows} rows of {extracted} images, " +
            $"{string.Join(", ", result.Layers.Select(l => $"{l.Name} {l.ShapeText}"))}, {sampling}, {result.ExecutionProvider}, " +
            $"{sw.Elapsed.TotalSeconds:F1} s ({extracted / sw.Elapsed.TotalSeconds:F1} images/s)" +
            (result.SkippedImages > 0 ? $", skipped {result.SkippedImages} unreadable images" : "") + ":");
        if (shard is not null)
            Console.WriteLine(Path.GetFullPath(output));
        else
            foreach (var f in result.Files)
                Console.WriteLine(f);
        return 0;
    }

}
