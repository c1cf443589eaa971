using System.Diagnostics;
using Microsoft.ML.ActivationAtlas.Extraction;
using Microsoft.ML.Data;

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
        "  --seed <n>                     random position seed (default 0)\n" +
        "  --margin <n>                   positions excluded at each edge for random (default 1)\n" +
        "  --batch <n>                    images per ONNX Runtime call (default 32)\n" +
        "  --per-class <n>                at most n images per sub-folder (default all)\n" +
        "  --skip-bad                     skip unreadable images (counted) instead of failing\n";

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
        args.RejectUnknown();
        if (batch < 1)
            throw new UsageException("--batch must be at least 1");

        var images = Datasets.ImageFolder.Scan(folder, perLabel: perClass, checkReadable: false);
        var ml = new MLContext(seed: seed);
        var estimator = ml.Transforms.ExtractActivations(new ActivationExtractingEstimator.Options
        {
            Model = model,
            Layers = layers,
            OutputColumnNames = layers.Select((_, i) => "A" + i).ToArray(),
            Sampling = sampling,
            Seed = seed,
            Margin = margin,
            BatchSize = batch,
            BadRows = skipBad ? BadRowHandling.Skip : BadRowHandling.Fail,
            InputColumnName = "ImagePath", // decoded and resized by the estimator, in parallel per batch
            Session = session,
        });
        var (width, height) = estimator.ImageSize;
        var data = ml.Data.LoadFromEnumerable(images.Paths.Select((p, i) => new ImageRow { ImagePath = p, Label = images.Labels[i] }));
        using var transformer = estimator.Fit(data);
        var view = transformer.Transform(data);

        var columns = transformer.OutputColumnNames.Select(n => view.Schema[n]).ToList();
        var schemaColumns = columns.Concat([view.Schema["ImagePath"], view.Schema["Label"], view.Schema["Position"]]).ToList();
        Console.Error.WriteLine($"atlas extract: {images.Paths.Count} images, {string.Join(", ", transformer.Layers.Select(l => $"{l.Name} {l.ShapeText}"))}, {sampling}, {transformer.ExecutionProvider}");
        long expected = images.Paths.Count * (long)(sampling == ActivationSampling.AllPositions ? transformer.Layers[0].Height * transformer.Layers[0].Width : 1);
        var progress = new ProgressBar(expected, "rows");
        var sw = Stopwatch.StartNew();
        using (var writer = new ActivationFileWriter(output, transformer.Layers.Select(l => l.FriendlyName ?? l.Name).ToList(),
            transformer.Layers.Select(l => l.Channels).ToList()))
        {
            using (var cursor = view.GetRowCursor(schemaColumns))
            {
                var getters = columns.Select(c => cursor.GetGetter<VBuffer<float>>(c)).ToArray();
                var path = cursor.GetGetter<ReadOnlyMemory<char>>(view.Schema["ImagePath"]);
                var label = cursor.GetGetter<ReadOnlyMemory<char>>(view.Schema["Label"]);
                var position = cursor.GetGetter<VBuffer<int>>(view.Schema["Position"]);
                var buffers = new VBuffer<float>[getters.Length];
                var vectors = new ReadOnlyMemory<float>[getters.Length];
                ReadOnlyMemory<char> p = default, l = default;
                VBuffer<int> pos = default;
                while (cursor.MoveNext())
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    for (int i = 0; i < getters.Length; i++)
                    {
                        getters[i](ref buffers[i]);
                        vectors[i] = buffers[i].DenseValues().ToArray();
                    }
                    path(ref p);
                    label(ref l);
                    position(ref pos);
                    var yx = pos.GetValues();
                    writer.Append(p.ToString(), l.ToString(), yx[0], yx[1], vectors);
                    progress.Report(writer.Rows);
                }
            }
            progress.Done(writer.Rows);
            writer.Complete(new Dictionary<string, object?>
            {
                ["model"] = model.Description,
                ["layers"] = transformer.Layers.Select(x => new { name = x.Name, friendly = x.FriendlyName, op = x.OpType, shape = x.Shape.Skip(1).ToArray() }).ToArray(),
                ["sampling"] = sampling.ToString(),
                ["seed"] = seed,
                ["margin"] = margin,
                ["images"] = images.Paths.Count,
                ["skipped_images"] = transformer.SkippedRowCount,
                ["skipped"] = transformer.SkippedRows.Select(s => new { row = s.Row, image = s.ImagePath, reason = s.Reason }).ToArray(),
                ["image_size"] = new[] { height, width },
                ["execution_provider"] = transformer.ExecutionProvider,
            });
            Console.Error.WriteLine($"atlas extract: wrote {writer.Rows} rows in {sw.Elapsed.TotalSeconds:F1} s ({images.Paths.Count / sw.Elapsed.TotalSeconds:F1} images/s)" +
                (transformer.SkippedRowCount > 0 ? $", skipped {transformer.SkippedRowCount} unreadable images" : "") + ":");
            foreach (var f in writer.Files)
                Console.WriteLine(f);
        }
        return 0;
    }

    private sealed class ImageRow
    {
        public string ImagePath { get; set; } = "";
        public string Label { get; set; } = "";
    }
}
