using Microsoft.ML.ActivationAtlas.Binning;
using Microsoft.ML.ActivationAtlas.Rendering;

namespace Microsoft.ML.ActivationAtlas.Cli.Building;

/// <summary>
/// Writes the atlas of a subset of a built atlas's rows (a class atlas or a class comparison) laid out anew:
/// grid, aggregation, example icons, <c>atlas.png</c>, the viewer and <c>atlas.json</c>, into a new folder.
/// </summary>
internal static class SubsetAtlasWriter
{
    public static void Write(MLContext ml, BuiltAtlas built, int[] rows, float[] layout, int[] grids, int? classIndex, string title, string outDir,
        CancellationToken cancellationToken, AtlasAxes? axes = null)
    {
        int n = rows.Length;
        int dim = built.Dim, k = built.ClassCount;
        var act = new float[n * dim];
        var values = new float[n * k];
        for (int i = 0; i < n; i++)
        {
            built.Activations.AsSpan(rows[i] * dim, dim).CopyTo(act.AsSpan(i * dim, dim));
            built.ClassValues.AsSpan(rows[i] * k, k).CopyTo(values.AsSpan(i * k, k));
        }
        GridAtlas atlas;
        AtlasIcons icons;
        using (var p = new ConsoleProgress("grid"))
        {
            var view = Matrices.View(n, ("Activation", act, dim), ("Layout", layout, 2), ("Labels", values, k));
            var grid = ml.Transforms.BinToGrid(new BinToGridEstimator.Options { GridSizes = grids }).Fit(view);
            atlas = ml.Data.AggregateAtlas(grid.Transform(view), new AtlasAggregationOptions
            {
                AttributionColumnName = k > 0 ? "Labels" : null,
                ClassNames = built.Settings.ClassNames,
            }, p, cancellationToken);
            icons = AtlasIcons.FromNearestExamples(atlas, r => built.Rows.Paths[rows[r]], built.Settings.IconSize);
            p.Done(string.Join(", ", atlas.Levels.Select(l => $"{l.GridSize}: {l.Cells.Count} cells")));
        }
        using var o = new ConsoleProgress("outputs");
        AtomicOutput.WriteDirectory(outDir, overwrite: false, dir =>
        {
            int png = atlas.Levels[Math.Min(1, atlas.Levels.Count - 1)].GridSize;
            AtlasImageRenderer.Render(atlas, icons, Path.Combine(dir, "atlas.png"), new AtlasImageOptions { GridSize = png, CellPixels = Math.Max(16, Math.Min(built.Settings.IconSize, 4096 / png)), Axes = axes });
            if (classIndex is int c)
                AtlasImageRenderer.Render(atlas, icons, Path.Combine(dir, "atlas-class.png"), new AtlasImageOptions { GridSize = png, CellPixels = Math.Max(16, Math.Min(built.Settings.IconSize, 4096 / png)), ClassIndex = c });
            AtlasViewerWriter.WriteInto(atlas, icons, dir, new AtlasViewerOptions
            {
                Title = title,
                ModelName = built.Settings.Model,
                LayerName = built.Settings.Layer,
                ClassValueName = built.Settings.ClassValues,
                Axes = axes,
                IconPixels = built.Settings.IconSize,
                // The viewer's example rows are positions in the subset; map them to the images.
                ImagePathOfRow = r => built.Rows.Paths[rows[r]],
            });
            AtlasJsonWriter.Write(atlas, Path.Combine(dir, "atlas.json"), built.Settings.Model, built.Settings.Layer);
        });
        o.Done();
    }
}
