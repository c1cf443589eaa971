using System.Globalization;
using System.Runtime.InteropServices;
using System.Text.Json;
using Microsoft.ML.ActivationAtlas.Binning;
using Microsoft.ML.ActivationAtlas.Extraction;
using Microsoft.ML.ActivationAtlas.Inversion;
using Microsoft.ML.ActivationAtlas.Inversion.Network;
using Microsoft.ML.ActivationAtlas.Inversion.Objectives;
using Microsoft.ML.ActivationAtlas.Inversion.Optimization;
using Microsoft.ML.ActivationAtlas.Inversion.Transforms;
using Microsoft.ML.ActivationAtlas.Projection.Umap;
using Microsoft.ML.Data;

namespace Microsoft.ML.ActivationAtlas.Benchmarks.Inversion;

/// <summary>
/// Icon quality against icon-steps on real atlas cells: ResNet18 activations (one seeded random position of the 7x7
/// <c>ReLU393_Output_0</c> per CIFAR-10 image at 224 px), a UMAP layout, two nested grids, and 80 px icons of cells of
/// both grids, rendered as the atlas builder renders them. For every setting and budget it reports the median
/// fidelity (cosine of the icon's activation to the cell's mean), plausibility (cosine to the nearest real activation
/// among the atlas rows) and downstream agreement (<see cref="FeatureIconRenderer.Agreement"/>: the cosine of the
/// icon's pooled features to its members' mean, and whether a nearest-class-mean head on those features gives the
/// members' class), as a table on stderr and one JSON line on stdout.
/// Settings: <c>lucid</c> (Adam 0.05, constant; one run of the largest budget read at each smaller one; <c>lucid-x2</c> with two attempts),
/// <c>lr0.1</c>, <c>lr0.2-cos</c>, ... (learning rate, <c>-cos</c> cosine decay, <c>-es</c> early stopping,
/// <c>-white</c> whitening S = (E[a a^T])^-1 of the atlas rows, <c>-tlucid</c>/<c>-tlight</c>/<c>-tnone</c> weaker
/// transformation robustness than the article's, <c>-x2</c> two attempts), <c>default</c> (the library's defaults), and <c>warm:SETTING</c> for children of the fine grid
/// warm-started from their parent's icon (rendered cold with SETTING at its largest budget).
/// Options: --per-class 100 --coarse 10 --fine 20 --cells-coarse 12 --cells-fine 20 --size 80 --batch 16 --seed 3
/// --settings lucid-x2,lr0.2-cos,lr0.2-cos-tlucid,default,default-white,warm:default --steps 64,128,256,512 --warm-steps 16,32,64 --out artifacts/benchmarks/icon-steps.
/// </summary>
internal sealed class IconStepsBenchmark : IBenchmark
{
    private const string Layer = "ReLU393_Output_0";
    private const string Pooled = "Pooling395_Output_0";

    public string Name => "icon-steps";

    public string Description => "feature inversion: median fidelity, plausibility and downstream agreement against icon-steps on ResNet18 CIFAR-10 atlas cells";

    private sealed class Row
    {
        [VectorType(2)]
        public float[] Layout { get; set; } = [];

        [VectorType(512)]
        public float[] Activation { get; set; } = [];
    }

    private sealed record Cell(int Grid, int X, int Y, float[] Mean, int[] Members, Cell? Parent);

    // One measured row of the table.
    private sealed record Result(string Setting, string Start, int Steps, int Attempts, double IconSteps, int Cells,
        double Fidelity, double? Plausibility, double? Agreement, double? ClassAgreement);

    public int Run(string[] args)
    {
        var a = new BenchmarkArgs(args);
        int perClass = a.Get("per-class", 100), size = a.Get("size", 80), batch = a.Get("batch", 16), seed = a.Get("seed", 3);
        int coarse = a.Get("coarse", 10), fine = a.Get("fine", 20), cellsCoarse = a.Get("cells-coarse", 12), cellsFine = a.Get("cells-fine", 20);
        string[] settings = a.Get("settings", "lucid-x2,lr0.2-cos,lr0.2-cos-tlucid,default,default-white,warm:default").Split(',', StringSplitOptions.RemoveEmptyEntries);
        int[] steps = Ints(a.Get("steps", "64,128,256,512"));
        int[] warmSteps = Ints(a.Get("warm-steps", "16,32,64"));
        string outDir = Path.GetFullPath(a.Get("out", Path.Combine("artifacts", "benchmarks", "icon-steps")));
        Directory.CreateDirectory(outDir);

        // Atlas rows: one random position of the 7x7 layer per image at the network's own 224 px, and each image's
        // pooled features (the downstream layer), both cached in the output folder.
        var paths = IconData.CifarPaths(perClass).ToList();
        var acts = Cached(Path.Combine(outDir, $"activations-{perClass}-{seed}.f32"), 512, () =>
        {
            using var extractor = OnnxLayerGradientModel.Load(IconData.ResNet18, Layer, new OnnxLayerModelOptions
            {
                InputSize = 224,
                Normalization = MeanImagePreprocessing.Load(IconData.ResNet18Preprocess, 224),
                MaxBatchSize = 32,
            });
            var positions = new Random(seed);
            return IconData.Activations(extractor, paths, 224, (_, h, w) => (positions.Next(h), positions.Next(w)));
        });
        var ml = new MLContext(seed);
        using var downstream = ml.Transforms.CreateIconRenderer(new FeatureInversionEstimator.Options
        {
            Model = PretrainedModels.ResNet18,
            Layer = Layer,
            Size = size,
            Steps = 1,
        });
        var pooled = Cached(Path.Combine(outDir, $"pooled-{perClass}.f32"), 512, () => downstream.DownstreamFeatures(paths, Pooled).ToList());
        int rows = acts.Count, dim = acts[0].Length;
        var data = acts.SelectMany(v => v).ToArray();
        var labels = paths.Select(p => Path.GetFileName(Path.GetDirectoryName(p))!).ToArray();
        var classNames = labels.Distinct().Order(StringComparer.Ordinal).ToArray();
        // Nearest-class-direction head on the pooled features: scores = (mu_k / |mu_k|) . f, no bias.
        var weights = new float[classNames.Length * dim];
        for (int k = 0; k < classNames.Length; k++)
        {
            var mu = MeanOf(pooled, Enumerable.Range(0, rows).Where(i => labels[i] == classNames[k]).ToArray());
            System.Numerics.Tensors.TensorPrimitives.Multiply(mu, 1f / System.Numerics.Tensors.TensorPrimitives.Norm(mu), weights.AsSpan(k * dim, dim));
        }

        // Layout and two nested grids; cells of both grids, and the fine cells' parents.
        var layout = new UmapReducer(UmapOptions.ForAtlas with { Seed = seed, Deterministic = true }).Fit(data, rows, dim).Embedding;
        var view = ml.Data.LoadFromEnumerable(Enumerable.Range(0, rows).Select(i => new Row { Layout = [layout[2 * i], layout[2 * i + 1]], Activation = acts[i] }));
        var binned = ml.Transforms.BinToGrid(new BinToGridEstimator.Options { GridSizes = [coarse, fine] }).Fit(view).Transform(view);
        var gridCells = binned.GetColumn<int[]>("GridCell").ToArray();
        Cell Make(int grid, int x, int y, int level, Cell? parent)
        {
            var members = Enumerable.Range(0, rows).Where(i => gridCells[i][level] == y * grid + x).ToArray();
            return new Cell(grid, x, y, MeanOf(acts, members), members, parent);
        }
        int minimum = 3;
        var coarseCells = Enumerable.Range(0, coarse * coarse).Select(c => Make(coarse, c % coarse, c / coarse, 0, null)).Where(c => c.Members.Length >= minimum).ToList();
        var fineCells = Enumerable.Range(0, fine * fine).Select(c => (X: c % fine, Y: c / fine))
            .Select(c => Make(fine, c.X, c.Y, 1, coarseCells.FirstOrDefault(p => p.X == c.X * coarse / fine && p.Y == c.Y * coarse / fine)))
            .Where(c => c.Members.Length >= minimum && c.Parent is not null).ToList();
        var pick = new Random(seed);
        var children = fineCells.OrderBy(_ => pick.Next()).Take(cellsFine).ToList();
        var cells = coarseCells.OrderBy(_ => pick.Next()).Take(cellsCoarse).Concat(children).ToList();
        var parents = children.Select(c => c.Parent!).Distinct().ToList();
        Console.Error.WriteLine($"icon-steps: {rows} rows, {coarseCells.Count} cells at {coarse}, {fineCells.Count} at {fine} (>= {minimum} members); " +
            $"{cells.Count} cells measured ({cellsCoarse} at {coarse}, {children.Count} at {fine}, {parents.Count} parents)");

        // This CNTK export pads its stride-2 blocks asymmetrically, so the 7x7 block needs an input size divisible by 32.
        int input = (size + 31) / 32 * 32;
        using var model = OnnxLayerGradientModel.Load(IconData.ResNet18, Layer, new OnnxLayerModelOptions
        {
            InputSize = input,
            Normalization = MeanImagePreprocessing.Load(IconData.ResNet18Preprocess, input),
            MaxBatchSize = batch,
        });
        var whitening = Whitening.Fit(data, dim, WhiteningKind.SecondMomentInverse);

        var table = new List<Result>();
        var clock = System.Diagnostics.Stopwatch.StartNew();
        Result Measure(string setting, string start, int stepCount, int attempts, IReadOnlyList<RenderedIcon> icons, IReadOnlyList<Cell> of)
        {
            var plaus = IconQualityMetrics.Plausibility(icons, data);
            Console.Error.WriteLine($"  {setting} {start} {stepCount}: {clock.Elapsed.TotalSeconds:F0} s");
            var agreement = downstream.Agreement(icons, Pooled, of.Select(c => MeanOf(pooled, c.Members)).ToList(), weights);
            var r = new Result(setting, start, stepCount, attempts, icons.Average(i => i.StepsTaken), icons.Count,
                Comparison.Median(icons.Select(i => i.Fidelity)), Comparison.Median(plaus), Comparison.Median(agreement.Select(x => x.Cosine)),
                agreement.Average(x => x.TopClassMatches == true ? 1.0 : 0.0));
            table.Add(r);
            Console.Error.WriteLine($"  {Format(r)}");
            return r;
        }
        var directions = cells.Select(c => c.Mean).ToList();
        foreach (string setting in settings)
        {
            if (setting.StartsWith("warm:", StringComparison.Ordinal))
            {
                // Parents cold at the setting's largest budget, then the fine cells from their parent's parameters.
                string name = setting[5..];
                var parentOptions = Parse(name, size, batch, seed, steps.Max(), whitening, out _);
                var parentIcons = new IconRenderer(model, parentOptions).Render(parents.Select(p => p.Mean).ToList());
                var warmStarts = children.Select(c => (float[]?)parentIcons[parents.IndexOf(c.Parent!)].Parameters).ToList();
                foreach (int w in warmSteps)
                {
                    var o = Parse(name, size, batch, seed, w, whitening, out _);
                    o.Attempts = 1;
                    o.EvaluationInterval = Math.Max(1, Math.Min(o.EvaluationInterval, w / 4));
                    o.WarmStartSteps = w;
                    Measure(name, "warm", w, 1, new IconRenderer(model, o).Render(children.Select(c => c.Mean).ToList(), warmStarts), children);
                    Measure(name, "cold", w, 1, new IconRenderer(model, o).Render(children.Select(c => c.Mean).ToList()), children);
                }
                continue;
            }
            var options = Parse(setting, size, batch, seed, steps.Max(), whitening, out bool constant);
            if (constant && options.EarlyStoppingPatience == 0)
            {
                // A constant learning rate does not depend on the budget: one run of the largest budget, read at each
                // smaller one from the clean evaluations (last evaluation at the budget; the attempt with the better
                // objective); plausibility and agreement only where the icon itself is kept (the largest budget).
                options.EvaluationInterval = steps.Min();
                var icons = new IconRenderer(model, options).Render(directions);
                foreach (int budget in steps)
                    for (int attempts = 1; attempts <= options.Attempts; attempts++)
                    {
                        var picked = icons.Select(i => i.Evaluations.Where(e => e.Attempt < attempts && e.Step == budget).MaxBy(e => e.Objective)!.Fidelity);
                        if (budget == steps.Max() && attempts == options.Attempts)
                            Measure(setting, "cold", budget, attempts, icons, cells);
                        else
                        {
                            var r = new Result(setting, "cold", budget, attempts, budget * attempts, cells.Count, Comparison.Median(picked), null, null, null);
                            table.Add(r);
                            Console.Error.WriteLine($"  {Format(r)}");
                        }
                    }
                continue;
            }
            foreach (int budget in steps)
            {
                var o = Parse(setting, size, batch, seed, budget, whitening, out _);
                Measure(setting, "cold", budget, o.Attempts, new IconRenderer(model, o).Render(directions), cells);
            }
        }

        Console.Error.WriteLine();
        Console.Error.WriteLine($"{"setting",-28} {"start",-5} {"steps",5} {"att",3} {"icon-steps",10} {"fidelity",8} {"plausib.",8} {"agree",6} {"class",6}");
        foreach (var r in table)
            Console.Error.WriteLine(Format(r));
        var results = new Dictionary<string, object?>
        {
            ["benchmark"] = "icon-steps",
            ["layer"] = Layer,
            ["layer_at_icon_size"] = new[] { model.LayerChannels, model.LayerHeight, model.LayerWidth },
            ["rows"] = rows,
            ["grids"] = new[] { coarse, fine },
            ["cells"] = cells.Count,
            ["children"] = children.Count,
            ["size"] = size,
            ["table"] = table.Select(r => new Dictionary<string, object?>
            {
                ["setting"] = r.Setting,
                ["start"] = r.Start,
                ["steps"] = r.Steps,
                ["attempts"] = r.Attempts,
                ["mean_icon_steps"] = Math.Round(r.IconSteps, 1),
                ["cells"] = r.Cells,
                ["median_fidelity"] = Math.Round(r.Fidelity, 4),
                ["median_plausibility"] = r.Plausibility is { } p ? Math.Round(p, 4) : null,
                ["median_agreement"] = r.Agreement is { } g ? Math.Round(g, 4) : null,
                ["class_agreement"] = r.ClassAgreement is { } c ? Math.Round(c, 4) : null,
            }).ToList(),
        };
        Console.WriteLine(JsonSerializer.Serialize(results));
        return 0;
    }

    /// <summary>
    /// A setting's options at a budget: <c>lucid</c> (the article's transforms, Adam 0.05, constant), or <c>lrX</c>
    /// followed by any of <c>-cos</c>, <c>-es</c>, <c>-white</c>, <c>-tlucid</c>, <c>-tlight</c>, <c>-tnone</c>,
    /// <c>-x2</c>; <c>default</c> is the library's defaults, to which the same suffixes apply.
    /// </summary>
    private static IconRenderOptions Parse(string setting, int size, int batch, int seed, int steps, Whitening whitening, out bool constant)
    {
        var o = setting.StartsWith("default", StringComparison.Ordinal) ? new IconRenderOptions() : new IconRenderOptions
        {
            LearningRate = 0.05,
            LearningRateSchedule = LearningRateSchedule.Constant,
            EarlyStoppingPatience = 0,
            Attempts = 1,
            Transforms = RobustnessTransforms.Atlas(size),
        };
        o.Size = size;
        o.BatchSize = batch;
        o.Seed = seed;
        o.Steps = steps;
        o.EvaluationInterval = Math.Max(8, steps / 8);
        foreach (string part in setting.Split('-'))
        {
            if (part is "lucid" or "default")
                continue;
            if (part.StartsWith("lr", StringComparison.Ordinal))
                o.LearningRate = double.Parse(part[2..], CultureInfo.InvariantCulture);
            else if (part == "cos")
                o.LearningRateSchedule = LearningRateSchedule.Cosine;
            else if (part == "es")
                o.EarlyStoppingPatience = 2;
            else if (part == "white")
                o.Whitening = whitening;
            else if (part == "tlucid")
                o.Transforms = RobustnessTransforms.LucidStandard(size);
            else if (part == "tlight")
                o.Transforms = Light(size);
            else if (part == "tnone")
                o.Transforms = RobustnessTransforms.None;
            else if (part == "x2")
                o.Attempts = 2;
            else
                throw new ArgumentException($"Unknown part '{part}' of setting '{setting}'.");
        }
        constant = o.LearningRateSchedule == LearningRateSchedule.Constant;
        return o;
    }

    // Light transformation robustness: pad 4, jitter 4, scale within 2%, rotation within 5 degrees, then crop.
    private static IReadOnlyList<ImageTransform> Light(int size) =>
    [
        new PadTransform(4, 0.5f),
        new JitterTransform(4),
        new RandomScaleTransform([0.98, 0.99, 1, 1.01, 1.02]),
        new RandomRotateTransform([-5, -2.5, 0, 2.5, 5]),
        new CropOrPadTransform(size, size),
    ];

    private static string Format(Result r) =>
        string.Create(CultureInfo.InvariantCulture, $"{r.Setting,-28} {r.Start,-5} {r.Steps,5} {r.Attempts,3} {r.IconSteps,10:F0} {r.Fidelity,8:F3} {Opt(r.Plausibility),8} {Opt(r.Agreement),6} {Opt(r.ClassAgreement),6}");

    private static string Opt(double? v) => v is { } x ? x.ToString("F3", CultureInfo.InvariantCulture) : "-";

    private static int[] Ints(string list) => list.Split(',').Select(v => int.Parse(v, CultureInfo.InvariantCulture)).ToArray();

    private static float[] MeanOf(IReadOnlyList<float[]> vectors, IReadOnlyList<int> rows)
    {
        var mean = new float[vectors[0].Length];
        foreach (int r in rows)
            System.Numerics.Tensors.TensorPrimitives.Add(mean, vectors[r], mean);
        System.Numerics.Tensors.TensorPrimitives.Multiply(mean, 1f / Math.Max(1, rows.Count), mean);
        return mean;
    }

    // Vectors of a fixed length cached in a raw float file (written under a temporary name, then renamed).
    private static List<float[]> Cached(string path, int length, Func<List<float[]>> compute)
    {
        if (File.Exists(path))
        {
            var flat = MemoryMarshal.Cast<byte, float>(File.ReadAllBytes(path)).ToArray();
            return Enumerable.Range(0, flat.Length / length).Select(i => flat.AsSpan(i * length, length).ToArray()).ToList();
        }
        var vectors = compute();
        File.WriteAllBytes(path + ".tmp", MemoryMarshal.AsBytes(vectors.SelectMany(v => v).ToArray().AsSpan()).ToArray());
        File.Move(path + ".tmp", path, overwrite: true);
        return vectors;
    }
}
