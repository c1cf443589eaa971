using System.Globalization;
using Microsoft.ML.ActivationAtlas.Binning;
using Microsoft.ML.ActivationAtlas.Common;
using Microsoft.ML.ActivationAtlas.Inversion;
using Microsoft.ML.ActivationAtlas.Rendering;
using Microsoft.ML.Data;

namespace Microsoft.ML.ActivationAtlas.Building;

/// <summary>
/// The icons of a built atlas: each cell's example image nearest its mean activation, and with
/// <see cref="AtlasIconKind.Inversion"/> feature-inversion icons (the public <c>InvertFeatures</c> stage) of the mean
/// activations of the icon grid's cells, rendered in chunks and kept in the stage store one PNG per cell, so an
/// interrupted build resumes where it stopped.
/// </summary>
internal static class AtlasIconStep
{
    private const int Chunk = 16;

    /// <summary>The store entry of an inverted icon.</summary>
    public static string Entry(int grid, AtlasCell cell) =>
        string.Create(CultureInfo.InvariantCulture, $"icons-{grid}/{cell.X}_{cell.Y}.png");

    /// <summary>The icon grid's cells that get inverted icons.</summary>
    public static AtlasCell[] InvertedCells(AtlasLevel level, int minimumCount) => level.Cells.Where(c => c.Count >= minimumCount).ToArray();

    public static AtlasIcons Render(MLContext ml, GridAtlas atlas, IReadOnlyList<string> imagePaths, AtlasBuildOptions o, string layer,
        IAtlasStageStore store, string key, StageReporter report, CancellationToken ct)
    {
        var stage = report.Start("icons");
        var icons = AtlasIcons.FromNearestExamples(atlas, row => imagePaths[row], o.IconSize);
        stage.Done($"{icons.Count:N0} example icons");
        if (o.Icons != AtlasIconKind.Inversion)
            return icons;

        stage = report.Start("inversion");
        int grid = o.IconGridSize ?? o.ResolvedImageGridSize;
        var cells = InvertedCells(atlas.Level(grid), o.IconMinimumCount);
        var done = new Dictionary<AtlasCell, byte[]>();
        foreach (var c in cells)
            if (store.TryLoadBytes(Entry(grid, c), key, out var png))
                done[c] = png;
        var todo = cells.Where(c => !done.ContainsKey(c)).ToArray();
        stage.Report(cells.Length == 0 ? 1 : done.Count / (double)cells.Length);
        for (int start = 0; start < todo.Length; start += Chunk)
        {
            ct.ThrowIfCancellationRequested();
            var chunk = todo.Skip(start).Take(Chunk).ToArray();
            int dim = chunk[0].MeanActivation.Length;
            var view = new InMemoryDataView.Builder(chunk.Length)
                .Add("Direction", new VectorDataViewType(NumberDataViewType.Single, dim),
                    (int r, ref VBuffer<float> v) => InMemoryDataView.Fill(ref v, chunk[r].MeanActivation.Span))
                .Build();
            int before = done.Count;
            double best = 0;
            using var transformer = ml.Transforms.InvertFeatures(new FeatureInversionEstimator.Options
            {
                Model = o.Model,
                Layer = layer,
                Steps = o.IconSteps,
                Size = Math.Max(o.IconSize, 32),
                Seed = o.Seed,
                BatchSize = Chunk,
                Session = o.Session,
                // Within a chunk: the furthest step reached (attempts restart the steps), as a share of the chunk.
                Progress = new SyncProgress<IconRenderProgress>(x =>
                {
                    best = Math.Max(best, x.IconsTotal > 0 ? (x.IconsDone + (double)x.Step / Math.Max(1, x.Steps)) / x.IconsTotal : 0);
                    stage.Report((before + Math.Min(1, best) * chunk.Length) / cells.Length);
                }),
                CancellationToken = ct,
            }).Fit(view);
            var rendered = transformer.Transform(view);
            using var cursor = rendered.GetRowCursor([rendered.Schema["Icon"]]);
            var getter = cursor.GetGetter<MLImage>(rendered.Schema["Icon"]);
            int i = 0;
            while (cursor.MoveNext())
            {
                MLImage image = null!;
                getter(ref image);
                // MLImage saves to files only.
                string tmp = Path.Combine(Path.GetTempPath(), $"atlas-icon-{Guid.NewGuid():N}.png");
                try
                {
                    image.Save(tmp);
                    done[chunk[i]] = File.ReadAllBytes(tmp);
                }
                finally
                {
                    File.Delete(tmp);
                }
                var cell = chunk[i++];
                store.SaveBytes(Entry(grid, cell), key, done[cell]);
            }
            stage.Report(done.Count / (double)cells.Length);
        }
        foreach (var c in cells)
            icons.Set(grid, c.X, c.Y, done[c]);
        stage.Done($"{cells.Length:N0} icons of the {grid}x{grid} grid");
        return icons;
    }
}
