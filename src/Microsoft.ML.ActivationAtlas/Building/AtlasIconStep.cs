using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text.Json;
using System.Text.Json.Serialization;
using Microsoft.ML.ActivationAtlas.Binning;
using Microsoft.ML.ActivationAtlas.Common;
using Microsoft.ML.ActivationAtlas.Extraction;
using Microsoft.ML.ActivationAtlas.Inversion;
using Microsoft.ML.ActivationAtlas.Inversion.Objectives;
using Microsoft.ML.ActivationAtlas.Inversion.Optimization;
using Microsoft.ML.ActivationAtlas.Inversion.Parameterization;
using Microsoft.ML.ActivationAtlas.Onnx;
using Microsoft.ML.ActivationAtlas.Rendering;

namespace Microsoft.ML.ActivationAtlas.Building;

/// <summary>
/// The icons of a built atlas: each cell's example image nearest its mean activation, and with
/// <see cref="AtlasIconKind.Inversion"/> feature-inversion icons of the cells' mean activations, rendered by one
/// <see cref="FeatureIconRenderer"/> (network, gradient graphs and sessions built once) from the coarsest grid to the
/// finest: the coarsest grid's cells cold, each finer cell warm-started from its parent cell's optimised parameters,
/// until the time budget is spent. Each finished icon (PNG, quality, parameters) goes to the stage store, so an
/// interrupted build resumes where it stopped. The atlases of a subset of an atlas's rows (class atlases, class
/// comparisons) are drawn by the same step with the settings the atlas was built with (<see cref="IconSettings"/>).
/// </summary>
internal static class AtlasIconStep
{
    /// <summary>Icons per renderer call: the unit kept in the store and checked against the budget, in batches.</summary>
    private const int ChunkBatches = 4;

    /// <summary>What the stage store keeps with an inverted icon.</summary>
    internal sealed record IconMeta(double Fidelity, double? Plausibility, int Steps, bool WarmStarted,
        double? Agreement = null, string? CellClass = null, string? IconClass = null)
    {
        public InvertedIconInfo Info() => new(Fidelity, Plausibility, Steps, WarmStarted) { Agreement = Agreement, CellTopClass = CellClass, IconTopClass = IconClass };
    }

    /// <summary>What the inverted icons' downstream agreement compares them with.</summary>
    /// <param name="MemberFeatures">A cell's members' mean pooled features (spatial means of the layer), given its grid.</param>
    /// <param name="Head">The class head on pooled features (the atlas's trained head, or its class centroids), or null without class values.</param>
    internal sealed record Downstream(Func<int, AtlasCell, ReadOnlyMemory<float>> MemberFeatures, LinearHead? Head)
    {
        /// <summary>The cells' mean activations and no head: what an atlas without the members' pooled features has.</summary>
        public static Downstream CellMeans { get; } = new((_, cell) => cell.MeanActivation, null);
    }

    /// <summary>What <see cref="Render"/> made.</summary>
    /// <param name="Icons">The icons: examples, with the inverted ones set where made.</param>
    /// <param name="CompleteGrids">The grids whose eligible cells all have inverted icons, coarse to fine.</param>
    /// <param name="Note">A sentence on the inverted icons for <c>atlas.json</c> and the viewer, or null.</param>
    internal sealed record Result(AtlasIcons Icons, IReadOnlyList<int> CompleteGrids, string? Note);

    /// <summary>
    /// What the inverted icons of a build are drawn with, kept in <c>build.json</c> so that the atlases of its subsets
    /// (class atlases, comparisons) draw theirs the same way: the inversion's settings (parameterisation, steps, size,
    /// transforms, objective, optimiser, seed, whitening, the layer's token layout) and the cells' minimum count. A
    /// <c>build.json</c> written before the whitening and the token layout were kept reads as no whitening and the
    /// layout the atlas's extraction reads the layer with.
    /// </summary>
    internal sealed record IconSettings(int Steps, int? WarmStartSteps, int Size, int? NetworkInputSize, int Attempts, int BatchSize, int Seed,
        double LearningRate, [property: JsonConverter(typeof(JsonStringEnumConverter<LearningRateSchedule>))] LearningRateSchedule LearningRateSchedule,
        double FinalLearningRateFraction, int EvaluationInterval, int EarlyStoppingPatience, double EarlyStoppingTolerance,
        [property: JsonConverter(typeof(JsonStringEnumConverter<ImageBasis>))] ImageBasis Basis, bool DecorrelateColors,
        [property: JsonConverter(typeof(JsonStringEnumConverter<IconTransforms>))] IconTransforms Transforms,
        [property: JsonConverter(typeof(JsonStringEnumConverter<ObjectiveKind>))] ObjectiveKind Objective, double CosinePower, double CosineFloor,
        int MinimumCount,
        [property: JsonConverter(typeof(JsonStringEnumConverter<WhiteningKind>))] WhiteningKind Whitening = WhiteningKind.None, TokenLayout? Tokens = null)
    {
        /// <summary>The settings of an inversion (its model, layer and session aside).</summary>
        public static IconSettings Of(FeatureInversionEstimator.Options v, int minimumCount) => new(v.Steps, v.WarmStartSteps, v.Size, v.NetworkInputSize,
            v.Attempts, v.BatchSize, v.Seed, v.LearningRate, v.LearningRateSchedule, v.FinalLearningRateFraction, v.EvaluationInterval,
            v.EarlyStoppingPatience, v.EarlyStoppingTolerance, v.Basis, v.DecorrelateColors, v.Transforms, v.Objective, v.CosinePower, v.CosineFloor,
            minimumCount, v.Whitening, v.Tokens);

        /// <summary>
        /// The inversion these settings describe, on <paramref name="model"/>'s <paramref name="layer"/>, read with the
        /// recorded token layout or, where none is recorded, <paramref name="layerTokens"/> (the atlas's extraction's).
        /// </summary>
        public FeatureInversionEstimator.Options Inversion(ActivationModel model, string layer, OnnxSessionOptions session, TokenLayout? layerTokens) => new()
        {
            Model = model,
            Layer = layer,
            Tokens = Tokens ?? layerTokens,
            Whitening = Whitening,
            Session = session,
            Steps = Steps,
            WarmStartSteps = WarmStartSteps,
            Size = Size,
            NetworkInputSize = NetworkInputSize,
            Attempts = Attempts,
            BatchSize = BatchSize,
            Seed = Seed,
            LearningRate = LearningRate,
            LearningRateSchedule = LearningRateSchedule,
            FinalLearningRateFraction = FinalLearningRateFraction,
            EvaluationInterval = EvaluationInterval,
            EarlyStoppingPatience = EarlyStoppingPatience,
            EarlyStoppingTolerance = EarlyStoppingTolerance,
            Basis = Basis,
            DecorrelateColors = DecorrelateColors,
            Transforms = Transforms,
            Objective = Objective,
            CosinePower = CosinePower,
            CosineFloor = CosineFloor,
        };
    }

    /// <summary>
    /// How one atlas's inverted icons are drawn: the inversion, the grids inverted (coarse to fine), the cells'
    /// minimum count, the time budget (null: unlimited), the icon side, and the prefix of the store entries (a
    /// subset atlas keeps its icons apart from those of the atlas whose store it uses).
    /// </summary>
    internal sealed record Plan(FeatureInversionEstimator.Options Inversion, int[] Grids, int MinimumCount, TimeSpan? Budget, int IconSize, string Prefix = "")
    {
        /// <summary>The plan of a build.</summary>
        public static Plan Of(AtlasBuildOptions o, string layer) =>
            new(InversionOptions(o, layer), InvertedGrids(o.GridSizes, o.IconGridSize), o.IconMinimumCount, o.ResolvedIconBudget, o.IconSize);
    }

    /// <summary>The store entry of an inverted icon's PNG.</summary>
    public static string Entry(int grid, AtlasCell cell, string prefix = "") =>
        string.Create(CultureInfo.InvariantCulture, $"{prefix}icons-{grid}/{cell.X}_{cell.Y}.png");

    private static string MetaEntry(int grid, AtlasCell cell, string prefix) => Path.ChangeExtension(Entry(grid, cell, prefix), ".json");

    private static string ParametersEntry(int grid, AtlasCell cell, string prefix) => Path.ChangeExtension(Entry(grid, cell, prefix), ".params");

    /// <summary>A grid's cells that get inverted icons.</summary>
    public static AtlasCell[] InvertedCells(AtlasLevel level, int minimumCount) => level.Cells.Where(c => c.Count >= minimumCount).ToArray();

    /// <summary>The grids that get inverted icons, coarse to fine: all, or those up to <paramref name="finest"/>.</summary>
    public static int[] InvertedGrids(IEnumerable<int> grids, int? finest) => grids.Order().Where(g => finest is null || g <= finest).ToArray();

    /// <summary>
    /// The inversion settings of a build: the inversion's own defaults but for the model, layer (read with the build's
    /// token layout), cold steps, seed, whitening and sessions.
    /// </summary>
    internal static FeatureInversionEstimator.Options InversionOptions(AtlasBuildOptions o, string layer) => new()
    {
        Model = o.Model,
        Layer = layer,
        Tokens = o.Tokens,
        Whitening = o.IconWhitening,
        Steps = o.IconSteps,
        Seed = o.Seed,
        Session = o.Session,
    };

    /// <summary>The part of the store key that the inverted icons depend on beyond the atlas itself.</summary>
    internal static string InversionKey(AtlasBuildOptions o, string layer) => InversionKey(InversionOptions(o, layer), o.IconMinimumCount, o.IconGridSize);

    /// <summary>The part of the store key that inverted icons drawn with <paramref name="v"/> depend on beyond the atlas itself.</summary>
    internal static string InversionKey(FeatureInversionEstimator.Options v, int minimumCount, int? finestGrid)
    {
        // Auto resolves the same way for the same layer, and to LucidStandard on convolutional layers: the keys of
        // stores made before Auto existed stay valid. A non-default token layout is part of the key (icons a subset
        // atlas inverted before it took the build's layout are not reused); the default adds nothing, as before.
        var transforms = v.Transforms == IconTransforms.Auto ? IconTransforms.LucidStandard : v.Transforms;
        return string.Join("|", "inversion", v.Size, v.NetworkInputSize, v.Steps, v.WarmStartSteps, v.Attempts, v.BatchSize, v.Seed,
            v.LearningRate.ToString("R", CultureInfo.InvariantCulture), v.LearningRateSchedule, v.FinalLearningRateFraction.ToString("R", CultureInfo.InvariantCulture),
            v.EvaluationInterval, v.EarlyStoppingPatience, v.EarlyStoppingTolerance.ToString("R", CultureInfo.InvariantCulture), v.Basis, v.DecorrelateColors,
            transforms, v.Objective, v.CosinePower.ToString("R", CultureInfo.InvariantCulture), v.CosineFloor.ToString("R", CultureInfo.InvariantCulture),
            v.Whitening, minimumCount, finestGrid) + (v.Tokens is null || v.Tokens == TokenLayout.Default ? "" : $"|tokens {v.Tokens}");
    }

    /// <summary>
    /// The icons of <paramref name="atlas"/>: each cell's nearest example (<paramref name="imagePathOfRow"/>) at
    /// <paramref name="iconSize"/>, and with a <paramref name="plan"/> the inverted icons, coarse grid to fine, within its budget; <paramref name="downstream"/> is what their downstream agreement compares them with.
    /// <paramref name="activations"/> are the rows of the whole atlas (a subset's atlas: of the atlas it comes from), which
    /// a whitened inversion is fitted from.
    /// </summary>
    public static Result Render(MLContext ml, GridAtlas atlas, Func<int, string> imagePathOfRow, ReadOnlyMemory<float> activations, int iconSize, Plan? plan,
        Downstream downstream, IAtlasStageStore store, string key, StageReporter report, CancellationToken ct)
    {
        var stage = report.Start("icons");
        var icons = AtlasIcons.FromNearestExamples(atlas, imagePathOfRow, iconSize);
        stage.Done($"{icons.Count:N0} example icons");
        if (plan is null)
            return new Result(icons, [], null);

        stage = report.Start("inversion");
        var grids = plan.Grids;
        string prefix = plan.Prefix;
        var cells = grids.Select(g => InvertedCells(atlas.Level(g), plan.MinimumCount)).ToArray();
        int total = cells.Sum(c => c.Length), done = 0, reused = 0;
        var budget = plan.Budget;
        var inversion = plan.Inversion;
        using var renderer = ml.Transforms.CreateIconRenderer(inversion, activations);
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
                if (TryLoad(store, key, grid, cell, prefix, out var png, out var meta, out var parameters))
                {
                    icons.SetInverted(grid, cell.X, cell.Y, png, meta.Info());
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
                var finishedIcons = finished.Select(i => rendered[i]!).ToArray();
                var plausibility = IconQualityMetrics.Plausibility(finishedIcons, activations);
                var agreement = Agree(renderer, downstream, finishedIcons, grid, finished.Select(i => chunk[i]).ToArray());
                for (int f = 0; f < finished.Length; f++)
                {
                    var cell = chunk[finished[f]];
                    var icon = rendered[finished[f]]!;
                    var png = AtlasIcons.EncodeRgba(icon.ToRgba(), icon.Size, icon.Size);
                    var meta = new IconMeta(icon.Fidelity, plausibility[f], icon.StepsTaken, icon.WarmStarted, agreement[f].Cosine, agreement[f].CellClass, agreement[f].IconClass);
                    // The description goes last: an icon whose entries are not all written reads as missing.
                    store.SaveBytes(Entry(grid, cell, prefix), key, png);
                    if (hasChildren)
                        store.SaveBytes(ParametersEntry(grid, cell, prefix), key, MemoryMarshal.AsBytes(icon.Parameters.AsSpan()).ToArray());
                    store.SaveBytes(MetaEntry(grid, cell, prefix), key, JsonSerializer.SerializeToUtf8Bytes(meta));
                    icons.SetInverted(grid, cell.X, cell.Y, png, meta.Info());
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
    /// The grid to draw in <c>atlas.png</c> instead of <paramref name="preferred"/>: with inverted icons, the preferred
    /// grid when all its cells are inverted, or the finest coarser grid that is (the budget may stop short of it).
    /// </summary>
    public static int ImageGrid(int preferred, bool inverted, IReadOnlyList<int> completeGrids)
    {
        if (!inverted || completeGrids.Contains(preferred))
            return preferred;
        var coarser = completeGrids.Where(g => g < preferred).ToArray();
        return coarser.Length > 0 ? coarser.Max() : preferred;
    }

    /// <summary>
    /// Downstream agreement of finished icons: one forward run of the renderer's network per batch of icons gives their
    /// pooled features (<see cref="FeatureIconRenderer.LayerMeans"/>), compared with the members' mean pooled features
    /// of their cells (cosine) and read by the class head (the icon's top class, against the cell's top class value).
    /// </summary>
    private static (double Cosine, string? CellClass, string? IconClass)[] Agree(FeatureIconRenderer renderer, Downstream downstream,
        IReadOnlyList<RenderedIcon> icons, int grid, IReadOnlyList<AtlasCell> cells)
    {
        var features = renderer.LayerMeans(icons);
        var result = new (double, string?, string?)[icons.Count];
        for (int i = 0; i < icons.Count; i++)
        {
            var cell = cells[i];
            double cosine = ActivationObjective.Cosine(features[i], downstream.MemberFeatures(grid, cell).Span);
            string? cellClass = cell.TopClasses.Count > 0 && cell.TopClasses[0].Value != 0 ? cell.TopClasses[0].Name : null;
            string? iconClass = downstream.Head is { } head ? head.ClassNames[head.Predict(features[i])] : null;
            result[i] = (cosine, cellClass, iconClass);
        }
        return result;
    }

    /// <summary>
    /// Inverted icons (PNG) of a few cells only, each cold-started from the cells' mean activations with the build's
    /// inversion settings and one renderer: for uses that need the icons of some cells of an atlas built without them.
    /// <paramref name="activations"/> are the atlas's rows, which a whitened inversion is fitted from.
    /// </summary>
    public static byte[][] RenderCells(MLContext ml, IReadOnlyList<AtlasCell> cells, FeatureInversionEstimator.Options inversion, ReadOnlyMemory<float> activations,
        StageReporter report, CancellationToken ct)
    {
        var stage = report.Start("inversion");
        if (cells.Count == 0)
        {
            stage.Done("no cells");
            return [];
        }
        using var renderer = ml.Transforms.CreateIconRenderer(inversion, activations);
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
                if (TryLoad(store, key, grid, cell, "", out var png, out var meta, out _))
                    icons.SetInverted(grid, cell.X, cell.Y, png, meta.Info());
    }

    /// <summary>Removes the stored optimisation parameters (only a resumed build's finer cells start from them).</summary>
    public static void DiscardParameters(GridAtlas atlas, IEnumerable<int> grids, IAtlasStageStore store, string prefix = "")
    {
        foreach (int grid in grids)
            foreach (var cell in atlas.Level(grid).Cells)
                store.Delete(ParametersEntry(grid, cell, prefix));
    }

    private static bool TryLoad(IAtlasStageStore store, string key, int grid, AtlasCell cell, string prefix, out byte[] png, out IconMeta meta, out float[]? parameters)
    {
        meta = null!;
        parameters = null;
        png = [];
        if (!store.TryLoadBytes(MetaEntry(grid, cell, prefix), key, out var json) || !store.TryLoadBytes(Entry(grid, cell, prefix), key, out png))
            return false;
        meta = JsonSerializer.Deserialize<IconMeta>(json)!;
        if (store.TryLoadBytes(ParametersEntry(grid, cell, prefix), key, out var bytes) && bytes.Length % sizeof(float) == 0)
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
