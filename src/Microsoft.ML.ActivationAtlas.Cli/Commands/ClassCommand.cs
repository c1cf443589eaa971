using System.Globalization;
using Microsoft.ML.ActivationAtlas.Cli.Building;
using Microsoft.ML.ActivationAtlas.ClassAtlas;
using Microsoft.ML.ActivationAtlas.Projection;

namespace Microsoft.ML.ActivationAtlas.Cli.Commands;

/// <summary><c>atlas class</c>: the class activation atlas of one class of a built atlas.</summary>
internal sealed class ClassCommand : ICommand
{
    public string Name => "class";

    public string Summary => "class activation atlas: the rows of one class, laid out and binned anew";

    public string Usage => """
        usage: atlas class --atlas <dir> --class <name> [--out <dir>] [--filter rank|magnitude|both] [--top <n>] [--grids 10,20,40] [--seed <n>]

          --atlas <dir>     an atlas folder written by 'atlas build'
          --class <name>    the class (case-insensitive)
          --out <dir>       the folder to create (default <atlas>/class-<name>; must not exist)
          --filter <f>      rank: rows whose top class value is the class (default); magnitude: the --top rows with the
                            largest value for the class; both: either, deduplicated
          --top <n>         rows kept by the magnitude filter (default 2000)
          --grids <list>    nested grid sizes (default 10,20,40)
          --neighbors <n>   UMAP neighbours (default 20)
          --seed <n>        UMAP seed (default 1)

        Writes atlas.png, atlas-class.png (icons faded by the class value), index.html and atlas.json.
        """;

    public int Run(CommandArgs args, CancellationToken cancellationToken)
    {
        string atlasDir = args.Required("atlas");
        string className = args.Required("class");
        string? outArg = args.Optional("out");
        string filter = args.Optional("filter") ?? "rank";
        int top = args.Int("top", 2000);
        int[] grids = Grids(args.Optional("grids") ?? "10,20,40");
        int neighbors = args.Int("neighbors", 20);
        int seed = args.Int("seed", 1);
        args.RejectUnknown();
        var kind = filter switch
        {
            "rank" => ClassFilterKind.Rank,
            "magnitude" => ClassFilterKind.Magnitude,
            "both" => ClassFilterKind.Both,
            _ => throw new UsageException($"option --filter: '{filter}' is not rank, magnitude or both"),
        };

        var ml = new MLContext(seed);
        var built = BuiltAtlas.Open(ml, atlasDir);
        int k = built.ClassIndex(className);
        string name = built.Settings.ClassNames[k];
        string outDir = outArg ?? Path.Combine(atlasDir, "class-" + name);
        AtlasFolder.EnsureFree(outDir);

        var rows = ClassFilter.SelectRows(built.ClassValues, built.ClassCount, k, kind, top);
        if (rows.Length < 5)
            throw new InvalidOperationException($"Class '{name}' has only {rows.Length} rows in the atlas; a class atlas needs at least 5.");
        Console.Error.WriteLine($"atlas class: {rows.Length:N0} rows of '{name}' ({filter} filter)");

        float[] layout;
        using (var p = new ConsoleProgress("umap"))
        {
            var act = Gather(built.Activations, built.Dim, rows);
            var view = Matrices.View(rows.Length, ("Activation", act, built.Dim));
            var umap = ml.Transforms.ProjectToUmap(new UmapEstimator.Options
            {
                OutputColumnName = "Layout",
                InputColumnName = "Activation",
                NumberOfNeighbors = Math.Min(neighbors, rows.Length - 1),
                MinDist = 0.01f,
                Metric = DistanceMetric.Cosine,
                Seed = seed,
                Progress = new BuildCommand.SyncProgress<ProjectionProgress>(x => p.Report(x.Fraction)),
                CancellationToken = cancellationToken,
            }).Fit(view);
            umap.Progress = null;
            layout = Matrices.Read(umap.Transform(view), "Layout", out _, out _, cancellationToken);
            p.Done();
        }
        SubsetAtlasWriter.Write(ml, built, rows, layout, grids, k, $"Class activation atlas of “{name}” ({built.Settings.Model} {built.Settings.Layer})", outDir, cancellationToken);
        Console.Error.WriteLine($"atlas class: {Path.Combine(outDir, "index.html")}");
        return 0;
    }

    internal static float[] Gather(float[] matrix, int columns, int[] rows)
    {
        var result = new float[rows.Length * columns];
        for (int i = 0; i < rows.Length; i++)
            matrix.AsSpan(rows[i] * columns, columns).CopyTo(result.AsSpan(i * columns, columns));
        return result;
    }

    internal static int[] Grids(string text)
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
}
