using Microsoft.ML.ActivationAtlas.Building;
using Microsoft.ML.ActivationAtlas.ClassAtlas;

namespace Microsoft.ML.ActivationAtlas.Cli.Commands;

/// <summary><c>atlas class</c>: the class activation atlas of one class of a built atlas.</summary>
internal sealed class ClassCommand : ICommand
{
    public string Name => "class";

    public string Summary => "class activation atlas: the rows of one class, laid out and binned anew";

    public string Usage => $$"""
        usage: atlas class --atlas <dir> --class <name> [--layers <a,b,...>] [--out <dir>] [--filter rank|magnitude|both] [--top <n>] [--grids 10,20,40] [--seed <n>]
                           [--icon-budget <t>] [--cuda]

          --atlas <dir>     an atlas folder written by 'atlas build' (with --layers: the class atlas of every layer,
                            side by side in <out>/index.html)
          --class <name>    the class (case-insensitive)
          --layers <list>   with an atlas built with --layers: the layers whose class atlases to write (default: all)
          --out <dir>       the folder to create (default <atlas>/class-<name>; must not exist)
          --filter <f>      rank: rows whose top class value is the class (default); magnitude: the --top rows with the
                            largest value for the class; both: either, deduplicated
          --top <n>         rows kept by the magnitude filter (default 2000)
          --grids <list>    nested grid sizes (default 10,20,40)
          --neighbors <n>   UMAP neighbours (default {{AtlasBuildOptions.Defaults.NumberOfNeighbors}})
          --seed <n>        UMAP seed (default {{AtlasBuildOptions.Defaults.Seed}})
        {{BuildCommand.SubsetIconUsage}}
        Writes atlas.png, atlas-class.png (icons faded by the class value), index.html and atlas.json.
        """;

    public int Run(CommandArgs args, CancellationToken cancellationToken)
    {
        string atlasDir = args.Required("atlas");
        string className = args.Required("class");
        string? outArg = args.Optional("out");
        string filter = args.Optional("filter") ?? "rank";
        int top = args.Int("top", 2000, minimum: 1);
        int[] grids = BuildCommand.ParseGrids(args.Optional("grids") ?? "10,20,40");
        int neighbors = args.Int("neighbors", AtlasBuildOptions.Defaults.NumberOfNeighbors, minimum: 1);
        int seed = args.Int("seed", AtlasBuildOptions.Defaults.Seed);
        string? layersArg = args.Optional("layers");
        var icons = BuildCommand.SubsetIcons(args);
        args.RejectUnknown();
        var kind = filter switch
        {
            "rank" => ClassFilterKind.Rank,
            "magnitude" => ClassFilterKind.Magnitude,
            "both" => ClassFilterKind.Both,
            _ => throw new UsageException($"option --filter: '{filter}' is not rank, magnitude or both"),
        };

        bool isLinked = File.Exists(Path.Combine(atlasDir, LinkedAtlas.LinksFile)) && !File.Exists(Path.Combine(atlasDir, "build.json"));
        if (layersArg is not null && !isLinked)
            throw new UsageException($"option --layers: '{atlasDir}' is a single-layer atlas; build one with 'atlas build --layers' first");
        if (isLinked)
        {
            var linked = LinkedAtlas.Open(new MLContext(seed), atlasDir);
            string cls = linked.Layers[0].ClassNames[linked.Layers[0].ClassIndex(className)];
            string linkedOut = outArg ?? Path.Combine(atlasDir, "class-" + cls);
            Console.Error.WriteLine($"atlas class: '{cls}' ({filter} filter) on {linked.Layers.Count} layers");
            IReadOnlyList<(string Layer, int Rows)> counts;
            using (var stages = new ConsoleStages())
                counts = linked.WriteClassAtlases(cls, linkedOut, kind, top, grids, neighbors, seed,
                    layersArg?.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries), stages, cancellationToken, icons);
            Console.Error.WriteLine($"atlas class: {string.Join(", ", counts.Select(c => $"{c.Layer} {c.Rows:N0} rows"))}: {Path.Combine(linkedOut, "index.html")}");
            return 0;
        }
        var built = new MLContext(seed).Atlas().Open(atlasDir);
        string name = built.ClassNames[built.ClassIndex(className)];
        string outDir = outArg ?? Path.Combine(atlasDir, "class-" + name);
        Console.Error.WriteLine($"atlas class: '{name}' ({filter} filter)");
        int rows;
        using (var stages = new ConsoleStages())
            rows = built.WriteClassAtlas(name, outDir, kind, top, grids, neighbors, seed, stages, cancellationToken, icons);
        Console.Error.WriteLine($"atlas class: {rows:N0} rows of '{name}': {Path.Combine(outDir, "index.html")}");
        return 0;
    }
}
