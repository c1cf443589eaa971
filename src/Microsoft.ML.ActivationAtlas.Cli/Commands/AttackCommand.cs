using System.Globalization;
using Microsoft.ML.ActivationAtlas.Attacks;
using Microsoft.ML.ActivationAtlas.Building;
using Microsoft.ML.ActivationAtlas.Datasets;

namespace Microsoft.ML.ActivationAtlas.Cli.Commands;

/// <summary><c>atlas attack</c>: paste icons that push towards one class onto images of another and count the flips.</summary>
internal sealed class AttackCommand : ICommand
{
    public string Name => "attack";

    public string Summary => "patch attack: paste the icons that push towards class Y onto images of class X and count how often the head flips";

    public string Usage => """
        usage: atlas attack --atlas <dir> --from <X> --to <Y> --images <folder> --out <dir> [options]

          --atlas <dir>        an atlas folder written by 'atlas build --head train'
          --from <X>           the class whose images are attacked (case-insensitive)
          --to <Y>             the class the patches push towards
          --images <folder>    images in class sub-folders; those of X are attacked (unreadable files are skipped)
          --out <dir>          the folder to create (must not exist)
          --patches <n>        icons of the cells whose class values push hardest towards Y (Y minus X) (default 4)
          --cells <list>       the cells whose icons to paste instead, '<g>:<x>,<y>;<g>:<x>,<y>...'
          --grid <n>           the grid whose cells are ranked (default: the grid of the inverted icons, or of atlas.png)
          --min-count <n>      cells with fewer images are not ranked (default 3)
          --icons <kind>       what is pasted for a cell: 'atlas' (default: the icon the atlas holds), 'inversion' (the
                               cell's inverted icon, rendered for the cells pasted when the atlas has none, e.g. an
                               atlas built with --icons examples) or 'examples' (the nearest example image)
          --icon-steps <n>     optimisation steps of an icon inverted for the attack (default 128)
          --sizes <list>       patch sides as fractions of the image side (default 0.2,0.3,0.4)
          --size <f>           the size of the fixed placement, one of --sizes (default 0.3)
          --corners <list>     the corners tried (default top-left,top-right,bottom-left,bottom-right)
          --corner <c>         the corner of the fixed placement, one of --corners (default bottom-right)
          --max-images <n>     attack at most the first n images of X (default: all)
          --seed <n>           seed of the noise patches (default 1)
          --batch <n>          images per network call (default 32)

        Each patch is pasted at every size in each corner of every image of X, as the network sees it (center-cropped
        and resized to its input), and the atlas's trained head classifies the result; uniform random noise patches of
        the same sizes are the control. Reports per patch the rate of images classified Y at the fixed placement and at
        its best placement (chosen on the same images, so optimistic), and the rate that leaves X at all, each with a
        95% Wilson interval. Writes <out>/attack.json, <out>/index.html, <out>/contact.png (the most effective patches
        on example images) and <out>/patches/ (the icons pasted).
        """;

    public int Run(CommandArgs args, CancellationToken cancellationToken)
    {
        string atlasDir = args.Required("atlas");
        string from = args.Required("from"), to = args.Required("to");
        string imagesDir = args.Required("images");
        string outDir = args.Required("out");
        var options = new PatchAttackOptions
        {
            Patches = args.Int("patches", PatchAttackOptions.Defaults.Patches, minimum: 1),
            GridSize = args.Has("grid") ? args.Int("grid", 0) : null,
            MinimumCellCount = args.Int("min-count", PatchAttackOptions.Defaults.MinimumCellCount, minimum: 1),
            MaximumImages = args.Int("max-images", 0, minimum: 0),
            Seed = args.Int("seed", PatchAttackOptions.Defaults.Seed),
            BatchSize = args.Int("batch", PatchAttackOptions.Defaults.BatchSize, minimum: 1),
            FixedSize = (float)args.Double("size", PatchAttackOptions.Defaults.FixedSize),
            Icons = args.Optional("icons") switch
            {
                null or "atlas" => null,
                "inversion" => AtlasIconKind.Inversion,
                "examples" => AtlasIconKind.Examples,
                var k => throw new UsageException($"option --icons: '{k}' is not one of atlas, inversion, examples"),
            },
            IconSteps = args.Int("icon-steps", PatchAttackOptions.Defaults.IconSteps, minimum: 1),
            FixedCorner = args.Optional("corner") is { } corner ? ParseCorner(corner, "corner") : PatchAttackOptions.Defaults.FixedCorner,
        };
        if (args.Optional("corners") is { } corners)
            options.Corners = corners.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries).Select(c => ParseCorner(c, "corners")).ToArray();
        if (args.Optional("sizes") is { } sizes)
            options.Sizes = sizes.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries).Select(s =>
                float.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out float f) && f is > 0 and <= 1
                    ? f : throw new UsageException($"option --sizes: '{s}' is not a fraction of the image side in (0, 1]")).ToArray();
        if (args.Optional("cells") is { } cells)
            options.Cells = cells.Split(';', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)
                .Select(c => SearchCommand.ParseCell(c, "cells")).Select(c => new AtlasCellId(c.Grid, c.X, c.Y)).ToArray();
        args.RejectUnknown();
        if (!options.Corners.Contains(options.FixedCorner))
            throw new UsageException($"option --corner: {options.FixedCorner} is not one of --corners");
        if (!options.Sizes.Contains(options.FixedSize))
            throw new UsageException($"option --size: {options.FixedSize.ToString(CultureInfo.InvariantCulture)} is not one of --sizes ({string.Join(",", options.Sizes.Select(s => s.ToString(CultureInfo.InvariantCulture)))})");
        if (Directory.Exists(outDir) || File.Exists(outDir))
            throw new UsageException($"option --out: '{outDir}' already exists; choose another folder or remove it");

        var built = new MLContext(AtlasBuildOptions.Defaults.Seed).Atlas().Open(atlasDir);
        var images = ImageFolder.Scan(imagesDir, skipUnreadable: true);
        PatchAttackResult result;
        using (var stages = new ConsoleStages())
            result = built.WritePatchAttack(from, to, images, outDir, options, stages, cancellationToken);
        Console.Error.WriteLine($"atlas attack: {result.Images.Count:N0} images of '{result.SourceClass}' -> '{result.TargetClass}' " +
            $"(clean: {result.CleanTarget} already '{result.TargetClass}')");
        foreach (var p in result.Patches.Append(result.Noise))
            Console.Error.WriteLine($"  {(p.IsNoise ? "noise" : "cell " + p.Cell),-14} fixed {p.Fixed.ToTarget,-22} best {p.Best.ToTarget,-22} at {p.Best.Placement}");
        Console.Error.WriteLine($"atlas attack: {Path.Combine(outDir, "index.html")}, {Path.Combine(outDir, "attack.json")}, {Path.Combine(outDir, "contact.png")}");
        return 0;
    }

    private static PatchCorner ParseCorner(string text, string option) => text switch
    {
        "bottom-right" => PatchCorner.BottomRight,
        "bottom-left" => PatchCorner.BottomLeft,
        "top-left" => PatchCorner.TopLeft,
        "top-right" => PatchCorner.TopRight,
        _ => throw new UsageException($"option --{option}: '{text}' is not one of top-left, top-right, bottom-left, bottom-right"),
    };
}
