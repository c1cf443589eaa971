using Microsoft.ML.ActivationAtlas.Cli.Building;
using Microsoft.ML.ActivationAtlas.Histogram;
using Microsoft.ML.ActivationAtlas.Rendering;

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
        int seed = args.Int("seed", 1);
        int? gridArg = args.Has("grid") ? args.Int("grid", 0) : null;
        args.RejectUnknown();

        AtlasFolder.EnsureFree(outDir);
        var ml = new MLContext(seed);
        var built = BuiltAtlas.Open(ml, atlasDir);
        var sizes = built.Grid.Levels.Sizes;
        int grid = gridArg ?? sizes[Math.Min(1, sizes.Count - 1)];
        if (!sizes.Contains(grid))
            throw new UsageException($"option --grid: {grid} is not one of the atlas's grids ({string.Join(",", sizes)})");
        var images = ImageSet.Scan(imagesDir, samples, seed);
        var compare = compareDir is null ? null : ImageSet.Scan(compareDir, samples, seed);

        var a = Histogram(ml, built, images, "histogram", cancellationToken);
        var b = compare is null ? null : Histogram(ml, built, compare, "compare", cancellationToken);

        GridAtlas(ml, built, out var atlas, out var icons, cancellationToken);
        using var p = new ConsoleProgress("outputs");
        AtomicOutput.WriteDirectory(outDir, overwrite: false, dir =>
        {
            HeatmapRenderer.RenderCounts(a, grid, Path.Combine(dir, "histogram.png"), Math.Max(4, 640 / grid));
            var options = new AtlasViewerOptions
            {
                Title = $"Concept histogram of {Path.GetFileName(Path.TrimEndingDirectorySeparator(images.Root))} on the atlas of {built.Settings.Model} {built.Settings.Layer}",
                ModelName = built.Settings.Model,
                LayerName = built.Settings.Layer,
                ClassValueName = built.Settings.ClassValues,
                ImagePathOfRow = row => built.Rows.Paths[row],
            };
            options.Overlays.Add(ViewerOverlay.FromCounts($"{Path.GetFileName(images.Root)} (count)", a));
            if (b is not null)
            {
                var diff = ConceptHistogram.Difference(a, b, grid);
                HeatmapRenderer.RenderDifference(diff, grid, Path.Combine(dir, "difference.png"), Math.Max(4, 640 / grid));
                options.Overlays.Add(ViewerOverlay.FromCounts($"{Path.GetFileName(compare!.Root)} (count)", b));
                options.Overlays.Add(ViewerOverlay.FromDifference($"{Path.GetFileName(images.Root)} minus {Path.GetFileName(compare.Root)} (fraction)", a, b));
            }
            p.Report(0.3);
            AtlasViewerWriter.WriteInto(atlas, icons, dir, options);
            AtlasFolder.WriteJson(Path.Combine(dir, "histogram.json"), new
            {
                atlas = Path.GetFullPath(atlasDir),
                images = images.Root,
                total = a.Total,
                compare = compare?.Root,
                compareTotal = b?.Total,
                grids = sizes.Select(s => new { size = s, counts = a.Counts(s).ToArray(), compareCounts = b?.Counts(s).ToArray() }),
            });
        });
        p.Done();
        Console.Error.WriteLine($"atlas histogram: {a.Total:N0} images{(b is null ? "" : $" and {b.Total:N0} to compare")} -> {Path.Combine(outDir, "histogram.png")}, {Path.Combine(outDir, "index.html")}");
        return 0;
    }

    private static ConceptHistogram Histogram(MLContext ml, BuiltAtlas built, ImageSet images, string stage, CancellationToken cancellationToken)
    {
        using var p = new ConsoleProgress(stage);
        var data = ml.Data.LoadFromEnumerable(images.Paths.Select(x => new BuildCommand.ImageRow { ImagePath = x }));
        var histogram = ml.Data.ConceptHistogram(built.Pipeline.Transform(data), built.Grid.OutputColumnName, cancellationToken);
        p.Done($"{histogram.Total:N0} images");
        return histogram;
    }

    private static void GridAtlas(MLContext ml, BuiltAtlas built, out Binning.GridAtlas atlas, out AtlasIcons icons, CancellationToken cancellationToken)
    {
        using var p = new ConsoleProgress("atlas");
        atlas = built.Aggregate(ml, p, cancellationToken);
        icons = built.Icons(atlas);
        p.Done();
    }
}
