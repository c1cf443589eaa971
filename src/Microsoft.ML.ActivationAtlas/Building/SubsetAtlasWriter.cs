using Microsoft.ML.ActivationAtlas.Binning;
using Microsoft.ML.ActivationAtlas.Rendering;

namespace Microsoft.ML.ActivationAtlas.Building;

/// <summary>
/// Writes the atlas of a subset of a built atlas's rows (a class atlas or a class comparison) laid out anew:
/// grid, aggregation (with the build's minimum count), example icons (at the build's icon size), <c>atlas.png</c>,
/// the viewer and <c>atlas.json</c>, into a new folder. Of an atlas with inverted icons, a cell that holds exactly the
/// images of an inverted cell (the same mean activation) shows that icon; the others show example images, and the
/// viewer and <c>atlas.json</c> say so.
/// </summary>
internal static class SubsetAtlasWriter
{
    public static void Write(MLContext ml, BuiltAtlas built, int[] rows, float[] layout, int[] grids, int? classIndex, string title, string outDir,
        StageReporter report, CancellationToken cancellationToken, AtlasAxes? axes = null)
    {
        int n = rows.Length, dim = built.ActivationSize, k = built.ClassNames.Count;
        var stage = report.Start("grid");
        var view = Matrices.View(n, (AtlasStages.Activation, Matrices.Gather(built.Activations, dim, rows), dim), ("Layout", layout, 2),
            (AtlasStages.ClassValues, Matrices.Gather(built.ClassValues, k, rows), k));
        var grid = ml.Transforms.BinToGrid(new BinToGridEstimator.Options { GridSizes = grids }).Fit(view);
        var atlas = AtlasStages.Aggregate(ml, grid.Transform(view), built.ClassNames, built.MinimumCount, stage, cancellationToken);
        var icons = AtlasIcons.FromNearestExamples(atlas, r => built.ImagePaths[rows[r]], built.IconSize);
        string? note = built.IconKind == AtlasIconKind.Inversion ? ReuseInvertedIcons(built, atlas, rows, icons) : null;
        stage.Done(string.Join(", ", atlas.Levels.Select(l => $"{l.GridSize}: {l.Cells.Count} cells")) + (note is null ? "" : ". " + note));
        stage = report.Start("outputs");
        AtomicOutput.WriteDirectory(outDir, overwrite: false, dir =>
        {
            int png = atlas.Levels[Math.Min(1, atlas.Levels.Count - 1)].GridSize;
            var image = new AtlasImageOptions { GridSize = png, CellPixels = Math.Max(16, Math.Min(built.IconSize, 4096 / png)), Axes = axes };
            AtlasImageRenderer.Render(atlas, icons, Path.Combine(dir, "atlas.png"), image);
            if (classIndex is int c)
                AtlasImageRenderer.Render(atlas, icons, Path.Combine(dir, "atlas-class.png"),
                    new AtlasImageOptions { GridSize = png, CellPixels = image.CellPixels, ClassIndex = c });
            AtlasViewerWriter.WriteInto(atlas, icons, dir, new AtlasViewerOptions
            {
                Title = title,
                ModelName = built.ModelName,
                LayerName = built.LayerName,
                IconPixels = built.IconSize,
                ClassValueName = built.ClassValueName,
                Axes = axes,
                // The viewer's example rows are positions in the subset; map them to the images.
                ImagePathOfRow = r => built.ImagePaths[rows[r]],
                IconNote = note,
            });
            AtlasJsonWriter.Write(atlas, icons, Path.Combine(dir, "atlas.json"), built.ModelName, built.LayerName, note);
        });
        stage.Done();
    }

    /// <summary>
    /// Gives the cells of a subset atlas that hold the same images as an inverted cell of the built atlas that icon
    /// (same count, same nearest image, and the same mean activation); returns what the subset atlas's icons are.
    /// </summary>
    private static string ReuseInvertedIcons(BuiltAtlas built, GridAtlas subset, int[] rows, AtlasIcons icons)
    {
        var source = built.Icons;
        var inverted = new Dictionary<(int Count, int Row), List<AtlasCell>>();
        foreach (var level in built.Atlas.Levels)
            foreach (var cell in level.Cells)
                if (cell.ExampleRows.Count > 0 && source.Inversion(level.GridSize, cell.X, cell.Y) is not null)
                {
                    var key = (cell.Count, cell.ExampleRows[0]);
                    if (!inverted.TryGetValue(key, out var list))
                        inverted[key] = list = [];
                    list.Add(cell);
                }
        int reused = 0, total = 0;
        foreach (var level in subset.Levels)
            foreach (var cell in level.Cells)
            {
                total++;
                if (cell.ExampleRows.Count == 0 || !inverted.TryGetValue((cell.Count, rows[cell.ExampleRows[0]]), out var candidates))
                    continue;
                var same = candidates.FirstOrDefault(c =>
                    Inversion.Objectives.ActivationObjective.Cosine(c.MeanActivation.Span, cell.MeanActivation.Span) > 0.99999);
                if (same is null)
                    continue;
                icons.SetInverted(level.GridSize, cell.X, cell.Y, source.Get(same.GridSize, same.X, same.Y)!, source.Inversion(same.GridSize, same.X, same.Y)!);
                reused++;
            }
        return reused == 0
            ? "This atlas is laid out anew, and none of its cells holds the same images as an inverted cell of the atlas it comes from, so its cells show example images."
            : $"This atlas is laid out anew: {reused:N0} of its {total:N0} cells hold the same images as an inverted cell of the atlas it comes from and show that icon; the others show example images.";
    }
}
