using Microsoft.ML.ActivationAtlas.Cli.Building;
using Microsoft.ML.ActivationAtlas.ClassAtlas;
using Microsoft.ML.ActivationAtlas.Projection;
using Microsoft.ML.ActivationAtlas.Rendering;

namespace Microsoft.ML.ActivationAtlas.Cli.Commands;

/// <summary><c>atlas compare</c>: two classes side by side (x: difference of their class values, y: 1-D t-SNE).</summary>
internal sealed class CompareCommand : ICommand
{
    public string Name => "compare";

    public string Summary => "compare two classes: x = difference of their values, y = 1-D t-SNE of the activations";

    public string Usage => """
        usage: atlas compare --atlas <dir> --classes <a>,<b> [--out <dir>] [--grids 10,20,40] [--perplexity <x>] [--seed <n>]

          --atlas <dir>       an atlas folder written by 'atlas build'
          --classes <a>,<b>   the two classes (case-insensitive)
          --out <dir>         the folder to create (default <atlas>/compare-<a>-<b>; must not exist)
          --grids <list>      nested grid sizes (default 10,20,40)
          --perplexity <x>    t-SNE perplexity (default 30)
          --seed <n>          t-SNE seed (default 1)

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
        int[] grids = ClassCommand.Grids(args.Optional("grids") ?? "10,20,40");
        double perplexity = args.Double("perplexity", 30);
        int seed = args.Int("seed", 1);
        args.RejectUnknown();

        var ml = new MLContext(seed);
        var built = BuiltAtlas.Open(ml, atlasDir);
        int a = built.ClassIndex(names[0]), b = built.ClassIndex(names[1]);
        if (a == b)
            throw new UsageException($"option --classes: '{names[0]}' and '{names[1]}' are the same class");
        string na = built.Settings.ClassNames[a], nb = built.Settings.ClassNames[b];
        string outDir = outArg ?? Path.Combine(atlasDir, $"compare-{na}-{nb}");
        AtlasFolder.EnsureFree(outDir);

        int k = built.ClassCount;
        var rows = ClassFilter.SelectRows(built.ClassValues, k, a, ClassFilterKind.Rank, 0)
            .Union(ClassFilter.SelectRows(built.ClassValues, k, b, ClassFilterKind.Rank, 0)).Order().ToArray();
        if (rows.Length < 5)
            throw new InvalidOperationException($"Classes '{na}' and '{nb}' have only {rows.Length} rows in the atlas; a comparison needs at least 5.");
        Console.Error.WriteLine($"atlas compare: {rows.Length:N0} rows of '{na}' and '{nb}'");

        float[] layout;
        using (var p = new ConsoleProgress("t-sne"))
        {
            var view = Matrices.View(rows.Length, ("Activation", ClassCommand.Gather(built.Activations, built.Dim, rows), built.Dim),
                ("Values", ClassCommand.Gather(built.ClassValues, k, rows), k));
            // x: the fitted, clipped class difference; y: 1-D t-SNE; together the layout column binned below.
            var pipeline = ml.Transforms.ClassDifference("CompareX", "Values", a, b)
                .Append(ml.Transforms.ProjectToTsne(new TsneEstimator.Options
                {
                    OutputColumnName = "TsneY",
                    InputColumnName = "Activation",
                    NumberOfComponents = 1,
                    Perplexity = (float)Math.Min(perplexity, (rows.Length - 1) / 3.0),
                    Seed = seed,
                    Progress = new BuildCommand.SyncProgress<ProjectionProgress>(x => p.Report(x.Fraction)),
                    CancellationToken = cancellationToken,
                }))
                .Append(ml.Transforms.Concatenate("Layout", "CompareX", "TsneY"));
            layout = Matrices.Read(pipeline.Fit(view).Transform(view), "Layout", out _, out _, cancellationToken);
            p.Done();
        }
        SubsetAtlasWriter.Write(ml, built, rows, layout, grids, null, $"“{na}” (right) vs “{nb}” (left) ({built.Settings.Model} {built.Settings.Layer})", outDir, cancellationToken,
            AtlasAxes.ClassComparison(na, nb, built.Settings.ClassValues));
        Console.Error.WriteLine($"atlas compare: {Path.Combine(outDir, "index.html")}");
        return 0;
    }
}
