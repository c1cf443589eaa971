using Microsoft.ML.ActivationAtlas.Histogram;
using Microsoft.ML.ActivationAtlas.Building;
using Microsoft.ML.ActivationAtlas.Datasets;

namespace Microsoft.ML.ActivationAtlas.Cli.Commands;

/// <summary><c>atlas histogram</c>: where a new folder of images lands on a built atlas (its concept histogram).</summary>
internal sealed class HistogramCommand : ICommand
{
    public string Name => "histogram";

    public string Summary => "concept histogram of a new image folder on a built atlas (heat map + viewer)";

    public string Usage => """
        usage: atlas histogram --atlas <dir> --images <folder> --out <dir> [--compare <folder>] [--fdr <x>] [--grid <n>] [--samples <n>] [--seed <n>]

          --atlas <dir>       an atlas folder written by 'atlas build'
          --images <folder>   the new images (searched recursively)
          --out <dir>         the folder to create (must not exist)
          --compare <folder>  a second folder: per cell the log2 ratio of the two folders' shares with a 95% interval,
                              and its significance (Fisher's exact test, Benjamini-Hochberg false discovery rate)
          --fdr <x>           false discovery rate of --compare (default 0.05)
          --grid <n>          the grid of the pictures and the ranked lists (default: the atlas's coarsest grid)
          --samples <n>       use a seeded random sample of each folder (default: all)

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
        args.RejectUnknown();

        var built = new MLContext(seed).Atlas().Open(atlasDir);
        var sizes = built.GridSizes;
        int grid = gridArg ?? sizes[0];
        if (!sizes.Contains(grid))
            throw new UsageException($"option --grid: {grid} is not one of the atlas's grids ({string.Join(",", sizes)})");
        var images = ImageFolder.Scan(imagesDir, samples, seed);
        var compare = compareDir is null ? null : ImageFolder.Scan(compareDir, samples, seed);
        ConceptHistogramResult result;
        using (var stages = new ConsoleStages())
            result = built.WriteConceptHistogram(images, compare, grid, outDir, stages, cancellationToken, comparison);
        Console.Error.WriteLine($"atlas histogram: {result.Histogram.Total:N0} images{(result.Compared is { } b ? $" and {b.Total:N0} to compare" : "")} -> {Path.Combine(outDir, "histogram.png")}, {Path.Combine(outDir, "index.html")}");
        return 0;
    }
}
