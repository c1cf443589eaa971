using System.Globalization;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using Microsoft.ML.ActivationAtlas.Binning;
using Microsoft.ML.ActivationAtlas.Rendering;

namespace Microsoft.ML.ActivationAtlas.Building;

/// <summary>
/// Writes the atlas of a subset of a built atlas's rows (a class atlas or a class comparison) laid out anew:
/// grid, aggregation (with the build's minimum count), icons, <c>atlas.png</c>, the viewer and <c>atlas.json</c>, into
/// a new folder. The icons are of the atlas's kind: of an atlas with inverted icons, each cell's mean activation is
/// inverted by the build's icon step (<see cref="AtlasIconStep"/>) with the settings the atlas was built with, coarse
/// grid to fine within the budget, and the cells left show example stand-ins marked as such; of an atlas with example
/// icons, example images. The inverted icons go to the atlas's stage store under an entry prefix of their own, so an
/// interrupted class atlas resumes from the icons it finished.
/// </summary>
internal static class SubsetAtlasWriter
{
    public static void Write(MLContext ml, BuiltAtlas built, int[] rows, float[] layout, int[] grids, int? classIndex, string title, string outDir,
        StageReporter report, CancellationToken cancellationToken, SubsetIconOptions? iconOptions, AtlasAxes? axes = null)
    {
        int n = rows.Length, dim = built.ActivationSize, k = built.ClassNames.Count;
        var stage = report.Start("grid");
        var view = Matrices.View(n, (AtlasStages.Activation, Matrices.Gather(built.Activations, dim, rows), dim), ("Layout", layout, 2),
            (AtlasStages.ClassValues, Matrices.Gather(built.ClassValues, k, rows), k));
        var grid = ml.Transforms.BinToGrid(new BinToGridEstimator.Options { GridSizes = grids }).Fit(view);
        var atlas = AtlasStages.Aggregate(ml, grid.Transform(view), built.ClassNames, built.MinimumCount, stage, cancellationToken);
        stage.Done(string.Join(", ", atlas.Levels.Select(l => $"{l.GridSize}: {l.Cells.Count} cells")));

        var (plan, settingsNote) = built.SubsetIconPlan(iconOptions, atlas.Levels.Select(l => l.GridSize));
        string key = string.Join("|", "subset", Hash(MemoryMarshal.AsBytes(rows.AsSpan())), Hash(MemoryMarshal.AsBytes(layout.AsSpan())),
            string.Join(",", grids), built.MinimumCount, built.IconSize, built.IconStoreKey ?? "",
            plan is null ? "examples" : AtlasIconStep.InversionKey(plan.Inversion, plan.MinimumCount, null));
        if (plan is not null)
            plan = plan with { Prefix = $"subsets/{Hash(System.Text.Encoding.UTF8.GetBytes(key))}/" };
        var (icons, complete, budgetNote) = AtlasIconStep.Render(ml, atlas, r => built.ImagePaths[rows[r]], built.Activations, built.IconSize, plan,
            AtlasIconStep.Downstream.CellMeans, built.Store, key, report, cancellationToken);
        string? note = string.Join(" ", new[] { settingsNote, budgetNote }.Where(s => s is not null)) is { Length: > 0 } joined ? joined : null;

        stage = report.Start("outputs");
        AtomicOutput.WriteDirectory(outDir, overwrite: false, dir =>
        {
            int png = AtlasIconStep.ImageGrid(atlas.Levels[Math.Min(1, atlas.Levels.Count - 1)].GridSize, plan is not null, complete);
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
        // The PNGs stay for a later class atlas of the same rows; only an interrupted one starts from the parameters.
        if (plan is not null)
            AtlasIconStep.DiscardParameters(atlas, plan.Grids, built.Store, plan.Prefix);
        stage.Done();
    }

    private static string Hash(ReadOnlySpan<byte> bytes) => Convert.ToHexString(SHA256.HashData(bytes))[..16].ToLower(CultureInfo.InvariantCulture);
}
