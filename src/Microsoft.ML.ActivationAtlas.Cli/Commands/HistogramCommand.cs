using Microsoft.ML.ActivationAtlas.Histogram;
using Microsoft.ML.ActivationAtlas.Building;
using Microsoft.ML.ActivationAtlas.Cluster;
using Microsoft.ML.ActivationAtlas.Datasets;

namespace Microsoft.ML.ActivationAtlas.Cli.Commands;

/// <summary><c>atlas histogram</c>: where a new folder of images lands on a built atlas (its concept histogram).</summary>
internal sealed class HistogramCommand : ICommand
{
    public string Name => "histogram";

    public string Summary => "concept histogram of a new image folder on a built atlas (heat map + viewer)";

    public string Usage => """
        usage: atlas histogram --atlas <dir> --images <folder> --out <dir> [--compare <folder>] [--fdr <x>] [--grid <n>] [--samples <n>] [--seed <n>] [--shard k/n]

          --atlas <dir>       an atlas folder written by 'atlas build'
          --images <folder>   the new images (searched recursively)
          --out <dir>         the folder to create (must not exist)
          --compare <folder>  a second folder: per cell the log2 ratio of the two folders' shares with a 95% interval,
                              and its significance (Fisher's exact test, Benjamini-Hochberg false discovery rate)
          --fdr <x>           false discovery rate of --compare (default 0.05)
          --grid <n>          the grid of the pictures and the ranked lists (default: the atlas's coarsest grid)
          --samples <n>       use a seeded random sample of each folder (default: all)
          --shard <k/n>       count only part k (from 0) of n of the image list(s) and write the counts to <out>/shard.json;
                              'atlas merge' adds the parts and writes what one run would (see docs/sharded-jobs.md)

        Writes <out>/histogram.png (the atlas's icons with opacity by the folder's share, a legend, the top concepts),
        <out>/comparison.png (with --compare: the significant cells, the most over- and under-represented concepts),
        <out>/histogram.json, <out>/counts.json (the counts, for ConceptHistogram.Load and merging) and the atlas viewer
        opened on the histogram (<out>/index.html).
        """;

    public int Run(CommandArgs args, CancellationToken cancellationToken)
    {
        string atlasDir = args.Required("atlas");
        string imagesDir = args.Required("images");
        string outDir = args.Required("out");
        string? compareDir = args.Optional("compare");
        int samples = args.Int("samples", 0);
        int seed = args.Int("seed", AtlasBuildOptions.Defaults.Seed);
        int? gridArg = args.Has("grid") ? args.Int("grid", 0) : null;
        var comparison = new HistogramComparisonOptions { FalseDiscoveryRate = args.Double("fdr", 0.05) };
        Shard? shard = ParseShard(args.Optional("shard"));
        args.RejectUnknown();

        var built = new MLContext(seed).Atlas().Open(atlasDir);
        var sizes = built.GridSizes;
        int grid = gridArg ?? sizes[0];
        if (!sizes.Contains(grid))
            throw new UsageException($"option --grid: {grid} is not one of the atlas's grids ({string.Join(",", sizes)})");
        var images = ImageFolder.Scan(imagesDir, samples, seed);
        var compare = compareDir is null ? null : ImageFolder.Scan(compareDir, samples, seed);
        if (shard is { } part)
        {
            int counted;
            using (var stages = new ConsoleStages())
                counted = ShardedHistogram.WriteShard(built, images, compare, part, grid, outDir, stages, cancellationToken, comparison);
            Console.Error.WriteLine($"atlas histogram: shard {part}: {counted:N0} images -> {Path.Combine(outDir, "shard.json")}");
            return 0;
        }
        ConceptHistogramResult result;
        using (var stages = new ConsoleStages())
            result = built.WriteConceptHistogram(images, compare, grid, outDir, stages, cancellationToken, comparison);
        Console.Error.WriteLine($"atlas histogram: {result.Histogram.Total:N0} images{(result.Compared is { } b ? $" and {b.Total:N0} to compare" : "")} -> {Path.Combine(outDir, "histogram.png")}, {Path.Combine(outDir, "index.html")}");
        return 0;
    }

    /// <summary>Parses <c>--shard k/n</c>.</summary>
    internal static Shard? ParseShard(string? text)
    {
        if (text is null)
            return null;
        try
        {
            return Shard.Parse(text);
        }
        catch (FormatException e)
        {
            throw new UsageException($"option --shard: {e.Message}");
        }
    }
}
