using System.Globalization;
using Microsoft.ML.ActivationAtlas.Building;
using Microsoft.ML.ActivationAtlas.Cluster;
using Microsoft.ML.ActivationAtlas.Datasets;
using Microsoft.ML.ActivationAtlas.Search;

namespace Microsoft.ML.ActivationAtlas.Cli.Commands;

/// <summary><c>atlas search</c>: the images of a folder that show a concept of a built atlas most strongly.</summary>
internal sealed class SearchCommand : ICommand
{
    public string Name => "search";

    public string Summary => "search an image folder by concept (a cell, a class or a direction) of a built atlas";

    public string Usage => """
        usage: atlas search --atlas <dir> (--cell <g>:<x>,<y> | --class <name> | --direction <file>) --images <folder> --out <dir> [--top <k>] [--shard k/n]

          --atlas <dir>        an atlas folder written by 'atlas build'
          --cell <g>:<x>,<y>   the mean activation of cell (x, y) of grid g (one of the atlas's grids)
          --class <name>       the class's direction: its rows' mean activation, weighted by their class value,
                               minus the mean of all rows
          --direction <file>   a vector of the layer's width: .npy (float32) or text numbers
          --images <folder>    the images to search (recursively; unreadable files are skipped and listed)
          --out <dir>          the folder to create (must not exist)
          --top <k>            how many images to keep (default 50)
          --shard <k/n>        search only part k (from 0) of n of the image list and write its best k to
                               <out>/shard.json; 'atlas merge' takes the best of all parts and writes what one
                               run writes (see docs/sharded-jobs.md)

        Every position of the atlas's layer is compared (cosine) with the query; each image scores by its best
        position. Writes <out>/index.html (the matches, the matching region outlined), <out>/search.json (score,
        path, label, position and region of each) and <out>/images/ (copies of the matched files).
        """;

    public int Run(CommandArgs args, CancellationToken cancellationToken)
    {
        string atlasDir = args.Required("atlas");
        string imagesDir = args.Required("images");
        string outDir = args.Required("out");
        string? cell = args.Optional("cell"), className = args.Optional("class"), direction = args.Optional("direction");
        int top = args.Int("top", 50);
        Shard? shard = HistogramCommand.ParseShard(args.Optional("shard"));
        args.RejectUnknown();
        if ((cell is null ? 0 : 1) + (className is null ? 0 : 1) + (direction is null ? 0 : 1) != 1)
            throw new UsageException("give exactly one of --cell, --class and --direction");
        if (top < 1)
            throw new UsageException($"option --top: {top} must be at least 1");

        var built = new MLContext(AtlasBuildOptions.Defaults.Seed).Atlas().Open(atlasDir);
        ConceptQuery query;
        if (cell is not null)
        {
            var (g, x, y) = ParseCell(cell);
            query = ConceptQuery.ForCell(built, g, x, y);
        }
        else if (className is not null)
            query = ConceptQuery.ForClass(built, className);
        else
            query = ConceptQuery.FromFile(direction!);
        var images = ImageFolder.Scan(imagesDir, skipUnreadable: true);
        ConceptSearchResult result;
        if (shard is { } part)
        {
            using (var stages = new ConsoleStages())
                result = ShardedSearch.WriteShard(built, query, images, top, part, outDir, stages, cancellationToken);
            Console.Error.WriteLine($"atlas search: shard {part}: {query.Description}: the best {result.Matches.Count} of {result.ImagesSearched:N0} images -> {Path.Combine(outDir, "shard.json")}");
            return 0;
        }
        using (var stages = new ConsoleStages())
            result = built.WriteSearch(query, images, top, outDir, stages, cancellationToken);
        if (images.Unreadable.Count + result.SkippedImages.Count > 0)
            Console.Error.WriteLine($"atlas search: {images.Unreadable.Count + result.SkippedImages.Count} unreadable images skipped: {string.Join(", ", images.Unreadable.Concat(result.SkippedImages).Take(5))}");
        Console.Error.WriteLine($"atlas search: {query.Description}: the best {result.Matches.Count} of {result.ImagesSearched:N0} images ({result.ImagesPerSecond:0.#} images/s) -> {Path.Combine(outDir, "index.html")}, {Path.Combine(outDir, "search.json")}");
        return 0;
    }

    internal static (int Grid, int X, int Y) ParseCell(string text, string option = "cell")
    {
        var parts = text.Split(':');
        var xy = parts.Length == 2 ? parts[1].Split(',') : [];
        if (xy.Length != 2
            || !int.TryParse(parts[0], NumberStyles.Integer, CultureInfo.InvariantCulture, out int g)
            || !int.TryParse(xy[0], NumberStyles.Integer, CultureInfo.InvariantCulture, out int x)
            || !int.TryParse(xy[1], NumberStyles.Integer, CultureInfo.InvariantCulture, out int y))
            throw new UsageException($"option --{option}: '{text}' is not <grid>:<x>,<y> (e.g. 10:3,4)");
        return (g, x, y);
    }
}
