using Microsoft.ML.ActivationAtlas.Building;
using Microsoft.ML.ActivationAtlas.ClassAtlas;

namespace Microsoft.ML.ActivationAtlas.Cli.Commands;

/// <summary><c>atlas class</c>: the class activation atlas of one class of a built atlas.</summary>
internal sealed class ClassCommand : ICommand
{
    public string Name => "class";

    public string Summary => "class activation atlas: the rows of one class, laid out and binned anew";

    public string Usage => $$"""
        usage: atlas class --atlas <dir> --class <name> [--out <dir>] [--filter rank|magnitude|both] [--top <n>] [--grids 10,20,40] [--seed <n>]

          --atlas <dir>     an atlas folder written by 'atlas build'
          --class <name>    the class (case-insensitive)
          --out <dir>       the folder to create (default <atlas>/class-<name>; must not exist)
          --filter <f>      rank: rows whose top class value is the class (default); magnitude: the --top rows with the
                            largest value for the class; both: either, deduplicated
          --top <n>         rows kept by the magnitude filter (default 2000)
          --grids <list>    nested grid sizes (default 10,20,40)
          --neighbors <n>   UMAP neighbours (default {{AtlasBuildOptions.Defaults.NumberOfNeighbors}})
          --seed <n>        UMAP seed (default {{AtlasBuildOptions.Defaults.Seed}})

        Writes atlas.png, atlas-class.png (icons faded by the class value), index.html and atlas.json.
        """;

    public int Run(CommandArgs args, CancellationToken cancellationToken)
    {
        string atlasDir = args.Required("atlas");
        string className = args.Required("class");
        string? outArg = args.Optional("out");
        string filter = args.Optional("filter") ?? "rank";
        int top = args.Int("top", 2000);
        int[] grids = BuildCommand.ParseGrids(args.Optional("grids") ?? "10,20,40");
        int neighbors = args.Int("neighbors", AtlasBuildOptions.Defaults.NumberOfNeighbors);
        int seed = args.Int("seed", AtlasBuildOptions.Defaults.Seed);
        args.RejectUnknown();
        var kind = filter switch
        {
            "rank" => ClassFilterKind.Rank,
            "magnitude" => ClassFilterKind.Magnitude,
            "both" => ClassFilterKind.Both,
            _ => throw new UsageException($"option --filter: '{filter}' is not rank, magnitude or both"),
        };

        var built = new MLContext(seed).Atlas().Open(atlasDir);
        string name = built.ClassNames[built.ClassIndex(className)];
        string outDir = outArg ?? Path.Combine(atlasDir, "class-" + name);
        Console.Error.WriteLine($"atlas class: '{name}' ({filter} filter)");
        int rows;
        using (var stages = new ConsoleStages())
            rows = built.WriteClassAtlas(name, outDir, kind, top, grids, neighbors, seed, stages, cancellationToken);
        Console.Error.WriteLine($"atlas class: {rows:N0} rows of '{name}': {Path.Combine(outDir, "index.html")}");
        return 0;
    }
}
