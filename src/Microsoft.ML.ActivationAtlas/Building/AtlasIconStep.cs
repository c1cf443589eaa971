using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text.Json;
using Microsoft.ML.ActivationAtlas.Binning;
using Microsoft.ML.ActivationAtlas.Common;
using Microsoft.ML.ActivationAtlas.Inversion;
using Microsoft.ML.ActivationAtlas.Rendering;

namespace Microsoft.ML.ActivationAtlas.Building;

/// <summary>
/// The icons of a built atlas: each cell's example image nearest its mean activation, and with
/// <see cref="AtlasIconKind.Inversion"/> feature-inversion icons of the cells' mean activations, rendered by one
/// <see cref="FeatureIconRenderer"/> (network, gradient graphs and sessions built once) from the coarsest grid to the
/// finest: the coarsest grid's cells cold, each finer cell warm-started from its parent cell's optimised parameters,
/// until the time budget is spent. Each finished icon (PNG, quality, parameters) goes to the stage store, so an
/// interrupted build resumes where it stopped.
/// </summary>
internal static class AtlasIconStep
{
    /// <summary>Icons per renderer call: the unit kept in the store and checked against the budget, in batches.</summary>
    private const int ChunkBatches = 4;

    /// <summary>What the stage store keeps with an inverted icon.</summary>
    internal sealed record IconMeta(double Fidelity, double? Plausibility, int Steps, bool WarmStarted);

    /// <summary>What <see cref="Render"/> made.</summary>
    /// <param name="Icons">The icons: examples, with the inverted ones set where made.</param>
    /// <param name="CompleteGrids">The grids whose eligible cells all have inverted icons, coarse to fine.</param>
    /// <param name="Note">A sentence on the inverted icons for <c>atlas.json</c> and the viewer, or null.</param>
    internal sealed record Result(AtlasIcons Icons, IReadOnlyList<int> CompleteGrids, string? Note);

    /// <summary>The store entry of an inverted icon's PNG.</summary>
    public static string Entry(int grid, AtlasCell cell) =>
        string.Create(CultureInfo.InvariantCulture, $"icons-{grid}/{cell.X}_{cell.Y}.png");

    private static string MetaEntry(int grid, AtlasCell cell) => Path.ChangeExtension(Entry(grid, cell), ".json");

    private static string ParametersEntry(int grid, AtlasCell cell) => Path.ChangeExtension(Entry(grid, cell), ".params");

    /// <summary>A grid's cells that get inverted icons.</summary>
    public static AtlasCell[] InvertedCells(AtlasLevel level, int minimumCount) => level.Cells.Where(c => c.Count >= minimumCount).ToArray();

    /// <summary>The grids that get inverted icons, coarse to fine: all, or those up to <paramref name="finest"/>.</summary>
    public static int[] InvertedGrids(IEnumerable<int> grids, int? finest) => grids.Order().Where(g => finest is null || g <= finest).ToArray();

    /// <summary>The inversion settings of a build: the inversion's own defaults but for the model, layer, cold steps, seed and sessions.</summary>
    internal static FeatureInversionEstimator.Options InversionOptions(AtlasBuildOptions o, string layer) => new()
    {
        Model = o.Model,
        Layer = layer,
        Steps = o.IconSteps,
        Seed = o.Seed,
        Session = o.Session,
    };

    /// <summary>The part of the store key that the inverted icons depend on beyond the atlas itself.</summary>
    internal static string InversionKey(AtlasBuildOptions o, string layer)
    {
        var v = InversionOptions(o, layer);
        return string.Join("|", "inversion", v.Size, v.NetworkInputSize, v.Steps, v.WarmStartSteps, v.Attempts, v.BatchSize, v.Seed,
            v.LearningRate.ToString("R", CultureInfo.InvariantCulture), v.LearningRateSchedule, v.FinalLearningRateFraction.ToString("R", CultureInfo.InvariantCulture),
            v.EvaluationInterval, v.EarlyStoppingPatience, v.EarlyStoppingTolerance.ToString("R", CultureInfo.InvariantCulture), v.Basis, v.DecorrelateColors,
            v.Transforms, v.Objective, v.CosinePower.ToString("R", CultureInfo.InvariantCulture), v.CosineFloor.ToString("R", CultureInfo.InvariantCulture),
            v.Whitening, o.IconMinimumCount, o.IconGridSize);
    }

    public static Result Render(MLContext ml, GridAtlas atlas, IReadOnlyList<string> imagePaths, ReadOnlyMemory<float> activations, AtlasBuildOptions o,
        string layer, IAtlasStageStore store, string key, StageReporter report, CancellationToken ct)
    {
        var stage = report.Start("icons");
        var icons = AtlasIcons.FromNearestExamples(atlas, row => imagePaths[row], o.IconSize);
        stage.Done($"{icons.Count:N0} example icons");
        if (o.Icons != AtlasIconKind.Inversion)
            return new Result(icons, [], null);

        stage = report.Start("inversion");
        var grids = InvertedGrids(o.GridSizes, o.IconGridSize);
        var cells = grids.Select(g => InvertedCells(atlas.Level(g), o.IconMinimumCount)).ToArray();
        int total = cells.Sum(c => c.Length), done = 0, reused = 0;
        var budget = o.ResolvedIconBudget;
        var inversion = InversionOptions(o, layer);
        using var renderer = ml.Transforms.CreateIconRenderer(inversion);
        var clock = Stopwatch.StartNew();
        int chunkSize = ChunkBatches * inversion.BatchSize;
        var complete = new List<int>();
        long steps = 0;
        bool outOfTime = false;
        Dictionary<(int X, int Y), float[]> parents = new();
        for (int gi = 0; gi < grids.Length && !outOfTime; gi++)
        {
            int grid = grids[gi];
            bool hasChildren = gi + 1 < grids.Length;
            int shift = gi == 0 ? 0 : System.Numerics.BitOperations.Log2((uint)(grid / grids[gi - 1]));
            var current = new Dictionary<(int X, int Y), float[]>();
            var todo = new List<AtlasCell>();
            foreach (var cell in cells[gi])
            {
                if (TryLoad(store, key, grid, cell, out var png, out var meta, out var parameters))
                {
                    icons.SetInverted(grid, cell.X, cell.Y, png, new InvertedIconInfo(meta.Fidelity, meta.Plausibility, meta.Steps, meta.WarmStarted));
                    if (parameters is not null)
                        current[(cell.X, cell.Y)] = parameters;
                    done++;
                    reused++;
                }
                else
                {
                    todo.Add(cell);
                }
            }
            // The busiest cells first, so a budget that runs out mid-grid leaves the stand-ins where fewest images are.
            todo.Sort((a, b) => b.Count != a.Count ? b.Count.CompareTo(a.Count) : a.Y != b.Y ? a.Y.CompareTo(b.Y) : a.X.CompareTo(b.X));
            stage.Report(total == 0 ? 1 : done / (double)total);
            for (int start = 0; start < todo.Count; start += chunkSize)
            {
                ct.ThrowIfCancellationRequested();
                TimeSpan? left = budget - clock.Elapsed;
                if (left <= TimeSpan.Zero)
                {
                    outOfTime = true;
                    break;
                }
                var chunk = todo.GetRange(start, Math.Min(chunkSize, todo.Count - start));
                var directions = chunk.Select(c => c.MeanActivation.ToArray()).ToArray();
                var warm = gi == 0 ? null : chunk.Select(c => parents.GetValueOrDefault((c.X >> shift, c.Y >> shift))).ToArray();
                int before = done;
                var progress = new SyncProgress<IconRenderProgress>(p => stage.Report((before + p.IconsDone) / (double)total));
                var rendered = left is { } l
                    ? renderer.RenderWithin(directions, warm, l, progress, ct)
                    : renderer.Render(directions, warm, progress, ct);
                var finished = Enumerable.Range(0, chunk.Count).Where(i => rendered[i] is not null).ToArray();
                var plausibility = IconQualityMetrics.Plausibility(finished.Select(i => rendered[i]!).ToArray(), activations);
                for (int f = 0; f < finished.Length; f++)
                {
                    var cell = chunk[finished[f]];
                    var icon = rendered[finished[f]]!;
                    var png = AtlasIcons.EncodeRgba(icon.ToRgba(), icon.Size, icon.Size);
                    var meta = new IconMeta(icon.Fidelity, plausibility[f], icon.StepsTaken, icon.WarmStarted);
                    // The description goes last: an icon whose entries are not all written reads as missing.
                    store.SaveBytes(Entry(grid, cell), key, png);
                    if (hasChildren)
                        store.SaveBytes(ParametersEntry(grid, cell), key, MemoryMarshal.AsBytes(icon.Parameters.AsSpan()).ToArray());
                    store.SaveBytes(MetaEntry(grid, cell), key, JsonSerializer.SerializeToUtf8Bytes(meta));
                    icons.SetInverted(grid, cell.X, cell.Y, png, new InvertedIconInfo(meta.Fidelity, meta.Plausibility, meta.Steps, meta.WarmStarted));
                    if (hasChildren)
                        current[(cell.X, cell.Y)] = icon.Parameters;
                    steps += icon.StepsTaken;
                    done++;
                }
                stage.Report(done / (double)total);
                if (finished.Length < chunk.Count)
                {
                    outOfTime = true;
                    break;
                }
            }
            if (!outOfTime)
                complete.Add(grid);
            parents = current;
        }
        string? note = null;
        if (done < total)
            note = string.Create(CultureInfo.InvariantCulture,
                $"The icon time budget ({Describe(budget)}) ran out: {done:N0} of {total:N0} cells have inverted icons (grids {(complete.Count > 0 ? string.Join(",", complete) : "none")} complete); the others show their nearest example image as a stand-in.");
        stage.Done(string.Create(CultureInfo.InvariantCulture, $"{done:N0} of {total:N0} cells inverted ({reused:N0} stored, {steps:N0} icon-steps)")
            + (done < total ? $", budget {Describe(budget)} spent: the rest show examples" : ""));
        return new Result(icons, complete, note);
    }

    /// <summary>
    /// Inverted icons (PNG) of a few cells only, each cold-started from the cells' mean activations with the build's
    /// inversion settings and one renderer: for uses that need the icons of some cells of an atlas built without them.
    /// </summary>
    public static byte[][] RenderCells(MLContext ml, IReadOnlyList<AtlasCell> cells, FeatureInversionEstimator.Options inversion,
        StageReporter report, CancellationToken ct)
    {
        var stage = report.Start("inversion");
        if (cells.Count == 0)
        {
            stage.Done("no cells");
            return [];
        }
        using var renderer = ml.Transforms.CreateIconRenderer(inversion);
        var directions = cells.Select(c => c.MeanActivation.ToArray()).ToArray();
        double total = (double)directions.Length * inversion.Steps;
        var rendered = renderer.Render(directions, null, new SyncProgress<IconRenderProgress>(p => stage.Report(p.IconSteps / total)), ct);
        var pngs = rendered.Select(icon => AtlasIcons.EncodeRgba(icon.ToRgba(), icon.Size, icon.Size)).ToArray();
        stage.Done(string.Create(CultureInfo.InvariantCulture, $"{cells.Count} cells inverted, {inversion.Steps} steps each"));
        return pngs;
    }

    /// <summary>Reads the stored inverted icons of a built atlas into <paramref name="icons"/>.</summary>
    public static void Load(GridAtlas atlas, IEnumerable<int> grids, IAtlasStageStore store, string key, AtlasIcons icons)
    {
        foreach (int grid in grids)
            foreach (var cell in atlas.Level(grid).Cells)
                if (TryLoad(store, key, grid, cell, out var png, out var meta, out _))
                    icons.SetInverted(grid, cell.X, cell.Y, png, new InvertedIconInfo(meta.Fidelity, meta.Plausibility, meta.Steps, meta.WarmStarted));
    }

    /// <summary>Removes the stored optimisation parameters (only a resumed build's finer cells start from them).</summary>
    public static void DiscardParameters(GridAtlas atlas, IEnumerable<int> grids, IAtlasStageStore store)
    {
        foreach (int grid in grids)
            foreach (var cell in atlas.Level(grid).Cells)
                store.Delete(ParametersEntry(grid, cell));
    }

    private static bool TryLoad(IAtlasStageStore store, string key, int grid, AtlasCell cell, out byte[] png, out IconMeta meta, out float[]? parameters)
    {
        meta = null!;
        parameters = null;
        png = [];
        if (!store.TryLoadBytes(MetaEntry(grid, cell), key, out var json) || !store.TryLoadBytes(Entry(grid, cell), key, out png))
            return false;
        meta = JsonSerializer.Deserialize<IconMeta>(json)!;
        if (store.TryLoadBytes(ParametersEntry(grid, cell), key, out var bytes) && bytes.Length % sizeof(float) == 0)
            parameters = MemoryMarshal.Cast<byte, float>(bytes).ToArray();
        return true;
    }

    /// <summary>A budget in words: <c>10 min</c>, <c>45 s</c>, <c>unlimited</c>.</summary>
    internal static string Describe(TimeSpan? budget) => budget switch
    {
        null => "unlimited",
        { TotalHours: >= 1 } b when b.TotalHours == Math.Floor(b.TotalHours) => string.Create(CultureInfo.InvariantCulture, $"{b.TotalHours:0} h"),
        { TotalMinutes: >= 1 } b when b.TotalMinutes == Math.Floor(b.TotalMinutes) => string.Create(CultureInfo.InvariantCulture, $"{b.TotalMinutes:0} min"),
        { } b => string.Create(CultureInfo.InvariantCulture, $"{b.TotalSeconds:0.###} s"),
    };
}
