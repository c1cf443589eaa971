using Microsoft.ML.ActivationAtlas.Building;
using Microsoft.ML.ActivationAtlas.Datasets;

namespace Microsoft.ML.ActivationAtlas.Cli.Commands;

/// <summary><c>atlas histogram</c>: where a new folder of images lands on a built atlas (its concept histogram).</summary>
internal sealed class HistogramCommand : ICommand
{
    public string Name => "histogram";

    public string Summary => "concept histogram of a new image folder on a built atlas (heat map + viewer)";

    public string Usage => """
        usage: atlas histogram --atlas <dir> --images <folder> --out <dir> [--compare <folder>] [--grid <n>] [--samples <n>] [--seed <n>]

          --atlas <dir>       an atlas folder written by 'atlas build'
          --images <folder>   the new images (searched recursively)
          --out <dir>         the folder to create (must not exist)
          --compare <folder>  a second folder: also the per-cell difference (images minus compare, as fractions)
          --grid <n>          the grid of the heat-map images (default: the atlas's second-coarsest grid)
          --samples <n>       use a seeded random sample of each folder (default: all)

        Writes <out>/histogram.png (counts), <out>/difference.png (with --compare), <out>/histogram.json and the
        atlas viewer with the histogram as an overlay (<out>/index.html).
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
        args.RejectUnknown();

        var built = new MLContext(seed).Atlas().Open(atlasDir);
        var sizes = built.GridSizes;
        int grid = gridArg ?? sizes[Math.Min(1, sizes.Count - 1)];
        if (!sizes.Contains(grid))
            throw new UsageException($"option --grid: {grid} is not one of the atlas's grids ({string.Join(",", sizes)})");
        var images = ImageFolder.Scan(imagesDir, samples, seed);
        var compare = compareDir is null ? null : ImageFolder.Scan(compareDir, samples, seed);
        ConceptHistogramResult result;
        using (var stages = new ConsoleStages())
            result = built.WriteConceptHistogram(images, compare, grid, outDir, stages, cancellationToken);
        Console.Error.WriteLine($"atlas histogram: {result.Histogram.Total:N0} images{(result.Compared is { } b ? $" and {b.Total:N0} to compare" : "")} -> {Path.Combine(outDir, "histogram.png")}, {Path.Combine(outDir, "index.html")}");
        return 0;
    }
}
