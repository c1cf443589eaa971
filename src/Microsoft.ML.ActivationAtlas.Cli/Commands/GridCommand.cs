using Microsoft.ML.ActivationAtlas.Building;
using Microsoft.ML.ActivationAtlas.Extraction;
using Microsoft.ML.ActivationAtlas.Inversion;

namespace Microsoft.ML.ActivationAtlas.Cli.Commands;

/// <summary><c>atlas grid</c>: the activation grid of one image (an icon per layer position), with class values and its place on an atlas.</summary>
internal sealed class GridCommand : ICommand
{
    public string Name => "grid";

    public string Summary => "the activation grid of one image: an icon per position of the layer, class attribution, its cells on an atlas";

    public string Usage => $"""
        usage: atlas grid --image <file> (--model <m> --layer <l> | --atlas <dir>) [--head <file.onnx>] --out <dir>

          --image <file>       the image (any size; the network sees its center crop, as atlas extraction does)
          --atlas <dir>        an atlas folder written by 'atlas build': its network and layer, its trained head's
                               class values, and every position placed on it (its viewer with the image's cells)
          --layer <name>       a layer with spatial positions or a ViT token layer (tensor or friendly name; see
                               'atlas layers'); with
                               --atlas it may be left out, and must be the atlas's layer
          --head <file.onnx>   a classifier on the same network: each position's attribution to its classes
          --labels <file>      class names of --head, one a line (default: the model's metadata)
          --icon-steps <n>     optimisation steps per icon (default {ActivationGridOptions.Defaults.IconSteps})
          --icon-size <px>     icon side (default {ActivationGridOptions.Defaults.IconSize})
          --top <k>            classes listed per position and given a heat map (default {ActivationGridOptions.Defaults.TopClasses})
          --seed <n>           seed of the icons' optimisation (default 0)
          --out <dir>          the folder to create (must not exist)

        network (with --atlas it may be left out, and must be the atlas's):
        {ModelArguments.Usage}
        token layers (without --atlas; an atlas keeps the layout it was built with):
        {ModelArguments.TokenUsage}
        Writes <out>/grid.png (the network's view beside the icons), image.png (the network's part outlined),
        attribution.png (a heat map per top class), index.html (hover a position for its top classes and atlas
        cell), grid.json and, with --atlas, atlas/index.html (the atlas with the image's cells highlighted).
        """;

    public int Run(CommandArgs args, CancellationToken cancellationToken)
    {
        string image = args.Required("image");
        string outDir = args.Required("out");
        string? atlasDir = args.Optional("atlas"), layer = args.Optional("layer"), head = args.Optional("head"), labels = args.Optional("labels");
        if (atlasDir is null && (layer is null || !args.Has("model")))
            throw new UsageException("give --model and --layer, or --atlas");
        var model = args.Has("model") ? ModelArguments.Model(args) : null;
        var options = new ActivationGridOptions
        {
            Model = model,
            Layer = layer ?? "",
            IconSteps = args.Int("icon-steps", ActivationGridOptions.Defaults.IconSteps, minimum: 1),
            IconSize = args.Int("icon-size", ActivationGridOptions.Defaults.IconSize, minimum: 8),
            TopClasses = args.Int("top", ActivationGridOptions.Defaults.TopClasses, minimum: 1),
            Seed = args.Int("seed", 0),
            Session = ModelArguments.Session(args),
            Tokens = ModelArguments.Tokens(args),
        };
        args.RejectUnknown();
        if (atlasDir is not null && options.Tokens is not null)
            throw new UsageException($"options {ModelArguments.TokenOptions} and --atlas: the atlas keeps the token layout it was built with");
        if (head is not null)
        {
            if (!File.Exists(head))
                throw new UsageException($"option --head: '{head}' is not an existing ONNX classifier file");
            var basis = model ?? PretrainedModels.ResNet18;
            options.HeadModel = ActivationModel.FromFile(head, basis.Preprocessing, basis.PreprocessingModelPath);
            if (labels is not null)
                options.ClassNames = File.ReadAllLines(labels).Where(l => l.Length > 0).ToArray();
        }
        var ml = new MLContext(AtlasBuildOptions.Defaults.Seed);
        ActivationGrid grid;
        using (var stages = new ConsoleStages())
        {
            if (atlasDir is not null)
            {
                var atlas = ml.Atlas().Open(atlasDir);
                if (head is not null && model is null)
                    options.HeadModel = ActivationModel.FromFile(head, atlas.Model.Preprocessing, atlas.Model.PreprocessingModelPath);
                grid = atlas.WriteActivationGrid(image, outDir, options, stages, cancellationToken);
            }
            else
                grid = ml.Transforms.WriteActivationGrid(image, outDir, options, stages, cancellationToken);
        }
        Console.Error.WriteLine($"atlas grid: {grid.Rows}x{grid.Columns} positions of {grid.LayerName}" +
            (grid.ClassNames.Count > 0 ? $", class values from {grid.ClassSource}" : "") +
            (grid.Atlas is not null ? $", placed on {grid.Atlas.Folder}" : "") + $" -> {Path.Combine(outDir, "index.html")}, {Path.Combine(outDir, "grid.png")}");
        return 0;
    }
}
