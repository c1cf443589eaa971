using Microsoft.ML.ActivationAtlas.Binning;
using Microsoft.ML.ActivationAtlas.Rendering;

namespace Microsoft.ML.ActivationAtlas.Building;

/// <summary>
/// Writes the atlas of a subset of a built atlas's rows (a class atlas or a class comparison) laid out anew:
/// grid, aggregation (with the build's minimum count), example icons (at the build's icon size), <c>atlas.png</c>,
/// the viewer and <c>atlas.json</c>, into a new folder.
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
        stage.Done(string.Join(", ", atlas.Levels.Select(l => $"{l.GridSize}: {l.Cells.Count} cells")));
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
            });
            AtlasJsonWriter.Write(atlas, Path.Combine(dir, "atlas.json"), built.ModelName, built.LayerName);
        });
        stage.Done();
    }
}
