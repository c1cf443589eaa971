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
        int seed = args.Int("seed", 1);
        int? gridArg = args.Has("grid") ? args.Int("grid", 0) : null;
        var comparison = new HistogramComparisonOptions { FalseDiscoveryRate = args.Double("fdr", 0.05) };
        args.RejectUnknown();

        AtlasFolder.EnsureFree(outDir);
        var ml = new MLContext(seed);
        var built = BuiltAtlas.Open(ml, atlasDir);
        var sizes = built.Grid.Levels.Sizes;
        int grid = gridArg ?? sizes[0];
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
            string nameA = Path.GetFileName(Path.TrimEndingDirectorySeparator(images.Root));
            ConceptHistogramRenderer.Render(atlas, icons, a, Path.Combine(dir, "histogram.png"), new ConceptHistogramImageOptions
            {
                GridSize = grid, Title = $"{nameA} on the atlas of {built.Settings.Model} {built.Settings.Layer}",
            });
            a.Save(Path.Combine(dir, "counts.json"));
            var options = new AtlasViewerOptions
            {
                Title = $"Concept histogram of {Path.GetFileName(Path.TrimEndingDirectorySeparator(images.Root))} on the atlas of {built.Settings.Model} {built.Settings.Layer}",
                ModelName = built.Settings.Model,
                LayerName = built.Settings.Layer,
                ClassValueName = built.Settings.ClassValues,
                ImagePathOfRow = row => built.Rows.Paths[row],
                InitialOverlay = 0,
                IconPixels = built.Settings.IconSize,
            };
            options.Overlays.Add(ViewerOverlay.FromShares($"{nameA} (share)", a));
            var compared = b is null ? null : HistogramComparison.Compare(a, b, grid, comparison);
            if (b is not null)
            {
                string nameB = Path.GetFileName(Path.TrimEndingDirectorySeparator(compare!.Root));
                ConceptHistogramRenderer.RenderComparison(atlas, icons, compared!, nameA, nameB, Path.Combine(dir, "comparison.png"),
                    new ConceptHistogramImageOptions { Title = $"{nameA} vs {nameB} on the atlas of {built.Settings.Model} {built.Settings.Layer}" });
                options.Overlays.Add(ViewerOverlay.FromComparison($"{nameA} vs {nameB} (significant ratios)", a, b, comparison));
                options.Overlays.Add(ViewerOverlay.FromShares($"{nameB} (share)", b));
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
                comparison = compared is null ? null : new { grid, falseDiscoveryRate = comparison.FalseDiscoveryRate, cells = compared.Cells },
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
