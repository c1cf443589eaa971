using Microsoft.ML.ActivationAtlas.Building;

namespace Microsoft.ML.ActivationAtlas.Cli.Commands;

/// <summary><c>atlas compare</c>: two classes side by side (x: difference of their class values, y: 1-D t-SNE).</summary>
internal sealed class CompareCommand : ICommand
{
    public string Name => "compare";

    public string Summary => "compare two classes: x = difference of their values, y = 1-D t-SNE of the activations";

    public string Usage => $$"""
        usage: atlas compare --atlas <dir> --classes <a>,<b> [--out <dir>] [--grids 10,20,40] [--perplexity <x>] [--seed <n>]
                             [--icon-budget <t>] [--cuda]

          --atlas <dir>       an atlas folder written by 'atlas build'
          --classes <a>,<b>   the two classes (case-insensitive)
          --out <dir>         the folder to create (default <atlas>/compare-<a>-<b>; must not exist)
          --grids <list>      nested grid sizes (default 10,20,40)
          --perplexity <x>    t-SNE perplexity (default 30)
          --seed <n>          t-SNE seed (default 1)
        {{BuildCommand.SubsetIconUsage}}

        Rows of either class (rank filter) are placed at x = (value[a] - value[b]) / its 99th percentile, clipped to
        [-1, 1] (a on the right), and y = a 1-D t-SNE of their activations. Writes atlas.png, index.html, atlas.json.
        """;

    public int Run(CommandArgs args, CancellationToken cancellationToken)
    {
        string atlasDir = args.Required("atlas");
        var names = args.Required("classes").Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        if (names.Length != 2)
            throw new UsageException($"option --classes: give exactly two classes separated by a comma, not '{string.Join(",", names)}'");
        string? outArg = args.Optional("out");
        int[] grids = BuildCommand.ParseGrids(args.Optional("grids") ?? "10,20,40");
        double perplexity = args.Double("perplexity", 30);
        if (!(perplexity > 0))
            throw new UsageException($"option --perplexity: {perplexity.ToString(System.Globalization.CultureInfo.InvariantCulture)} must be positive");
        int seed = args.Int("seed", AtlasBuildOptions.Defaults.Seed);
        var icons = BuildCommand.SubsetIcons(args);
        args.RejectUnknown();

        var built = new MLContext(seed).Atlas().Open(atlasDir);
        int a = built.ClassIndex(names[0]), b = built.ClassIndex(names[1]);
        if (a == b)
            throw new UsageException($"option --classes: '{names[0]}' and '{names[1]}' are the same class");
        string na = built.ClassNames[a], nb = built.ClassNames[b];
        string outDir = outArg ?? Path.Combine(atlasDir, $"compare-{na}-{nb}");
        int rows;
        using (var stages = new ConsoleStages())
            rows = built.WriteComparison(na, nb, outDir, grids, perplexity, seed, stages, cancellationToken, icons);
        Console.Error.WriteLine($"atlas compare: {rows:N0} rows of '{na}' and '{nb}': {Path.Combine(outDir, "index.html")}");
        return 0;
    }
}
