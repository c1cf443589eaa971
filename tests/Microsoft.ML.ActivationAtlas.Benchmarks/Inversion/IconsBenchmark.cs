using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text.Json;
using Microsoft.ML.ActivationAtlas.Inversion;
using Microsoft.ML.ActivationAtlas.Inversion.Network;
using Microsoft.ML.ActivationAtlas.Inversion.Objectives;
using Microsoft.ML.ActivationAtlas.Inversion.Optimization;
using Microsoft.ML.ActivationAtlas.Inversion.Transforms;
using Microsoft.ML.ActivationAtlas.Onnx;
using SkiaSharp;

namespace Microsoft.ML.ActivationAtlas.Benchmarks.Inversion;

/// <summary>
/// Icon optimisation speed: N icons of S px optimised together for K Adam steps (atlas transforms and objective, one
/// attempt, one clean evaluation at the end), in icon-steps per second, ours (<see cref="IconRenderer"/> on ONNX Runtime)
/// against the same optimisation written for PyTorch (Python/icons_torch.py: torchvision's network with the same
/// weights, all icons in one tensor, the transforms batched with affine_grid/grid_sample), on googlenet to
/// <c>inception4c</c> and ResNet18 to <c>layer3</c> (ReLU347_Output_0) and <c>layer4</c> (ReLU393_Output_0). Both sides
/// get the same thread count and wait policy (see <see cref="Comparison.Read"/>), are warmed up and run alternating rounds; medians. The network part alone (normalisation,
/// forward, objective, input gradient of the batch) is timed the same way and reported in GFLOP/s against the
/// machine's measured matrix-multiply peak. Then a labelled contact sheet of ResNet18 icons for the mean last-layer
/// activation of every CIFAR-10 class (ours only).
/// Options: --model all|googlenet|resnet18-layer3|resnet18-layer4 --icons 16 --size 80 --steps 64 --rounds 3
/// --net-iterations 4 --threads (cores) --spin --sheet-steps 256 --out artifacts/benchmarks/icons --no-torch --no-sheet
/// --step auto|host|graph (<see cref="IconRenderOptions.StepPath"/>: the C# image side, or the whole step as one graph).
/// </summary>
internal sealed class IconsBenchmark : IBenchmark
{
    // A network cut at a layer, as ours loads it and as torchvision builds it. Multiple: the network's input size is the
    // icon size rounded up to it: ResNet18's ONNX export pads its stride-2 convolutions and max pool asymmetrically
    // (more at the top and left), torchvision symmetrically; they sample the same windows when every stride-2 input is even.
    private sealed record Case(string Name, string Path, string Layer, string TorchModel, string Cut, string Norm, int Multiple);

    private static readonly Case[] Cases =
    [
        new("googlenet", Path.Combine(SharedData.GradientFixtures, "googlenet", "model.onnx"), "inception4c", "googlenet", "inception4c", "imagenet", 1),
        new("resnet18-layer3", IconData.ResNet18, "ReLU347_Output_0", "resnet18", "layer3", "meanimage", 16),
        new("resnet18-layer4", IconData.ResNet18, "ReLU393_Output_0", "resnet18", "layer4", "meanimage", 32),
    ];

    public string Name => "icons";

    public string Description => "feature inversion: icon-steps/s and fidelity vs PyTorch/torchvision (googlenet, ResNet18 layer3/layer4), CIFAR-10 class contact sheet: [--model all|googlenet|resnet18-layer3|resnet18-layer4] [--icons 16] [--size 80] [--steps 64] [--rounds 3] [--threads cores] [--spin] [--step auto|host|graph] [--no-torch] [--no-sheet]";

    public int Run(string[] args)
    {
        var a = new BenchmarkArgs(args);
        int icons = a.Get("icons", 16), size = a.Get("size", 80), steps = a.Get("steps", 64), sheetSteps = a.Get("sheet-steps", 256);
        int rounds = a.Get("rounds", 3), netIterations = a.Get("net-iterations", 4);
        string which = a.Get("model", "all");
        if (!Enum.TryParse<IconStepPath>(a.Get("step", "auto"), ignoreCase: true, out var step) || !Enum.IsDefined(step))
        {
            Console.Error.WriteLine($"icons: --step {a.Get("step", "auto")} is not auto, host or graph.");
            return 2;
        }
        var cases = Cases.Where(c => which == "all" || c.Name == which).ToList();
        if (cases.Count == 0)
        {
            Console.Error.WriteLine($"icons: --model {which} is not all, {string.Join(", ", Cases.Select(c => c.Name))}.");
            return 2;
        }
        var settings = Comparison.Read(a);
        string outDir = Path.GetFullPath(a.Get("out", Path.Combine("artifacts", "benchmarks", "icons")));
        Directory.CreateDirectory(outDir);
        bool torch = !a.Has("no-torch");
        Console.Error.WriteLine($"icons: {icons} icons, {size} px, {steps} steps, {rounds} rounds, {settings.Threads} threads ({Environment.ProcessorCount} cores), output {outDir}");
        double ortPeak = Comparison.OnnxRuntimeMatMulPeak(settings);

        var result = new Dictionary<string, object?>
        {
            ["benchmark"] = "icons",
            ["icons"] = icons,
            ["size"] = size,
            ["steps"] = steps,
            ["rounds"] = rounds,
            ["step"] = step.ToString().ToLowerInvariant(),
        };
        settings.Describe(result);
        foreach (var c in cases)
            result[c.Name] = RunCase(c, icons, size, steps, rounds, netIterations, settings, torch, ortPeak, step);
        result["contact_sheet"] = a.Has("no-sheet") ? null : ContactSheet(IconData.ResNet18, IconData.ResNet18Preprocess, size, sheetSteps, settings, outDir);
        Console.WriteLine(JsonSerializer.Serialize(result));
        return 0;
    }

    private static Dictionary<string, object?> RunCase(Case c, int icons, int size, int steps, int rounds, int netIterations, Comparison.Settings settings, bool torch, double ortPeak,
        IconStepPath step)
    {
        int input = (size + c.Multiple - 1) / c.Multiple * c.Multiple;
        var normalization = c.Norm == "imagenet" ? InputNormalization.ImageNet : MeanImagePreprocessing.Load(IconData.ResNet18Preprocess, input);
        using var model = OnnxLayerGradientModel.Load(c.Path, c.Layer, new OnnxLayerModelOptions
        {
            InputSize = input,
            Normalization = normalization,
            MaxBatchSize = icons,
            Session = settings.Session(),
        });
        int ch = model.LayerChannels, layerSize = ch * model.LayerHeight * model.LayerWidth, imageSize = 3 * input * input;
        Console.Error.WriteLine($"{c.Name}: {model.Layer} [{ch}x{model.LayerHeight}x{model.LayerWidth}] at {input} px");
        // Targets: means of groups of 4 real CIFAR-10 activations (at the layer's centre, images resized to the input size).
        var acts = IconData.Activations(model, IconData.CifarPaths(4 * icons / 10 + 1).Take(4 * icons).ToList(), input);
        var random = new Random(11);
        var order = Enumerable.Range(0, acts.Count).OrderBy(_ => random.Next()).ToArray();
        var directions = Enumerable.Range(0, icons).Select(i =>
            Enumerable.Range(0, ch).Select(k => (float)Enumerable.Range(0, 4).Average(j => acts[order[4 * i + j]][k])).ToArray()).ToList();

        // Whole steps: a fresh optimisation of every icon per round, evaluated once at the end (as PyTorch's side).
        // The article's transforms and constant Adam 0.05, as PyTorch's side runs them (the renderer's defaults are lucid's
        // lighter transforms and Adam 0.2 with cosine decay).
        IconRenderOptions Options(int n, int seed) => new()
        {
            Size = size, Steps = n, Attempts = 1, BatchSize = icons, Seed = seed, EvaluationInterval = n,
            Transforms = RobustnessTransforms.Atlas(size), LearningRate = 0.05, LearningRateSchedule = LearningRateSchedule.Constant,
            StepPath = step,
        };
        new IconRenderer(model, Options(2, 0)).Render(directions); // builds the gradient (or step graph) session
        var fidelities = new List<double>();
        double OursSteps()
        {
            var sw = Stopwatch.StartNew();
            var rendered = new IconRenderer(model, Options(steps, fidelities.Count + 1)).Render(directions);
            double seconds = sw.Elapsed.TotalSeconds;
            fidelities.Add(Comparison.Median(rendered.Select(r => r.Fidelity)));
            return icons * steps / seconds;
        }

        // The network part alone: normalisation, forward, objective, input gradient, on a fixed batch.
        var renderer = new IconRenderer(model, Options(steps, 0));
        var targets = new float[icons * ch];
        for (int i = 0; i < icons; i++)
            renderer.Objective.PrepareTarget(directions[i], targets.AsSpan(i * ch, ch));
        var images = new float[icons * imageSize];
        var rng = new Random(2);
        for (int i = 0; i < images.Length; i++)
            images[i] = (float)rng.NextDouble();
        var layer = new float[icons * layerSize];
        var gradient = new float[icons * imageSize];
        var (py, px) = renderer.Position;
        void NetworkStep() => model.BackwardObjective(renderer.Objective, py * model.LayerWidth + px, images, icons, targets, layer, gradient);
        NetworkStep();
        double OursNetwork()
        {
            var sw = Stopwatch.StartNew();
            for (int i = 0; i < netIterations; i++)
                NetworkStep();
            return sw.Elapsed.TotalMilliseconds / netIterations;
        }

        var r = new Dictionary<string, object?>
        {
            ["layer"] = model.Layer,
            ["torch_cut"] = c.Cut,
            ["network_input_size"] = input,
            ["step_graph"] = renderer.UsesStepGraph,
            ["layer_shape"] = new[] { ch, model.LayerHeight, model.LayerWidth },
        };
        if (!torch)
        {
            var (oursOnly, _) = Comparison.Alternate(rounds, "icon-steps/s", OursSteps, null);
            var (netOnly, _) = Comparison.Alternate(rounds, "ms/batch (network)", OursNetwork, null);
            r["ours_icon_steps_per_s"] = Math.Round(Comparison.Median(oursOnly), 2);
            r["ours_median_fidelity"] = Math.Round(Comparison.Median(fidelities), 4);
            r["network_ours_ms_per_batch"] = Math.Round(Comparison.Median(netOnly), 1);
            return r;
        }

        string dir = Directory.CreateTempSubdirectory("icons-torch-").FullName;
        try
        {
            // The check: ONNX Runtime's layer (our normalisation included) for two seeded images at the input size.
            var xCheck = new float[2 * imageSize];
            for (int i = 0; i < xCheck.Length; i++)
                xCheck[i] = (float)rng.NextDouble();
            var layerCheck = new float[2 * layerSize];
            model.Forward(xCheck, 2, layerCheck);
            Comparison.WriteFloats(Path.Combine(dir, "x.f32"), xCheck);
            Comparison.WriteFloats(Path.Combine(dir, "layer.f32"), layerCheck);
            Comparison.WriteFloats(Path.Combine(dir, "directions.f32"), directions.SelectMany(d => d).ToArray());
            var argv = new List<object>
            {
                "--model", c.TorchModel, "--onnx", c.Path, "--cut", c.Cut, "--directions", Path.Combine(dir, "directions.f32"),
                "--channels", ch, "--size", size, "--input-size", input, "--steps", steps, "--norm", c.Norm,
                "--net-iterations", netIterations, "--check-input", Path.Combine(dir, "x.f32"), "--check-layer", Path.Combine(dir, "layer.f32"),
                "--layer-shape", Comparison.Shape(2, ch, model.LayerHeight, model.LayerWidth),
            };
            if (c.Norm == "meanimage")
                argv.AddRange(["--preprocess", IconData.ResNet18Preprocess]);
            using var worker = TorchWorker.Start("icons_torch.py", settings, [.. argv]);
            var position = worker.Info["layer_position"]!.AsArray().Select(v => v!.GetValue<int>()).ToArray();
            if (position[0] != py || position[1] != px)
                throw new InvalidOperationException($"PyTorch's objective position ({position[0]}, {position[1]}) is not ours ({py}, {px}).");
            var torchFidelities = new List<double>();
            var (ours, theirs) = Comparison.Alternate(rounds, "icon-steps/s", OursSteps, () =>
            {
                var t = worker.Run("steps");
                torchFidelities.Add(t["median_fidelity"]!.GetValue<double>());
                return t["icon_steps_per_s"]!.GetValue<double>();
            });
            var (oursNet, theirsNet) = Comparison.Alternate(rounds, "ms/batch (network)", OursNetwork, () => worker.Run("network")["ms_per_batch"]!.GetValue<double>());
            double o = Comparison.Median(ours), t = Comparison.Median(theirs), on = Comparison.Median(oursNet), tn = Comparison.Median(theirsNet);
            r["ours_icon_steps_per_s"] = Math.Round(o, 2);
            r["torch_icon_steps_per_s"] = Math.Round(t, 2);
            r["speedup_ours_over_torch"] = Math.Round(o / t, 3);
            r["ours_rounds_icon_steps_per_s"] = ours.Select(v => Math.Round(v, 2)).ToArray();
            r["torch_rounds_icon_steps_per_s"] = theirs.Select(v => Math.Round(v, 2)).ToArray();
            r["ours_median_fidelity"] = Math.Round(Comparison.Median(fidelities), 4);
            r["torch_median_fidelity"] = Math.Round(Comparison.Median(torchFidelities), 4);
            r["network_ours_ms_per_batch"] = Math.Round(on, 1);
            r["network_torch_ms_per_batch"] = Math.Round(tn, 1);
            // The network's share of a whole step (a step of the batch takes icons / icon-steps-per-second).
            r["network_ours_share_of_step"] = Math.Round(on / (1000.0 * icons / o), 3);
            r["network_torch_share_of_step"] = Math.Round(tn / (1000.0 * icons / t), 3);
            double flops = icons * (worker.Info["forward_flops_per_image"]!.GetValue<double>() + worker.Info["backward_flops_per_image"]!.GetValue<double>());
            Comparison.AddThroughput(r, worker.Info, flops, on, tn, ortPeak, "network_");
            Console.Error.WriteLine($"{c.Name}: ours {o:F1} icon-steps/s, PyTorch {t:F1} (ours/PyTorch {o / t:F2}); network part ours {on:F0} ms ({r["network_ours_gflops"]} GFLOP/s), PyTorch {tn:F0} ms ({r["network_torch_gflops"]} GFLOP/s)");
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
        return r;
    }

    /// <summary>Icons for the mean last-layer ResNet18 activation of each CIFAR-10 class, labelled, as one PNG.</summary>
    private static string ContactSheet(string resnet, string prep, int size, int steps, Comparison.Settings settings, string outDir)
    {
        const string layer = "ReLU393_Output_0";
        // This CNTK export pads its stride-2 blocks asymmetrically, so the 7x7 block needs an input size divisible by 32:
        // the icons are resized to the next such size for the network.
        int input = (size + 31) / 32 * 32;
        using var model = OnnxLayerGradientModel.Load(resnet, layer, new OnnxLayerModelOptions
        {
            InputSize = input,
            Normalization = MeanImagePreprocessing.Load(prep, input),
            Session = settings.Session(),
        });
        var classes = Directory.GetDirectories(SharedData.Cifar10Test).Select(Path.GetFileName).Order(StringComparer.Ordinal).ToList();
        var directions = new List<float[]>();
        foreach (var cls in classes)
        {
            var paths = Directory.GetFiles(Path.Combine(SharedData.Cifar10Test, cls!), "*.jpg").Order(StringComparer.Ordinal).Take(50).ToList();
            var acts = IconData.Activations(model, paths, input);
            directions.Add(Enumerable.Range(0, model.LayerChannels).Select(ch => (float)acts.Average(v => v[ch])).ToArray());
        }
        var sw = Stopwatch.StartNew();
        var icons = new IconRenderer(model, new IconRenderOptions { Size = size, Steps = steps, Attempts = 1, BatchSize = 10, Seed = 3 }).Render(directions);
        Console.Error.WriteLine($"contact sheet: {steps} steps in {sw.Elapsed.TotalSeconds:F0} s, fidelities {string.Join(", ", icons.Select(i => i.Fidelity.ToString("F2", CultureInfo.InvariantCulture)))}");

        int scale = 2, cell = size * scale, label = 30, cols = 5, rows = 2, pad = 8;
        using var surface = SKSurface.Create(new SKImageInfo(cols * (cell + pad) + pad, rows * (cell + label + pad) + pad));
        var canvas = surface.Canvas;
        canvas.Clear(SKColors.White);
        using var font = new SKFont(SKTypeface.Default, 14);
        using var textPaint = new SKPaint { Color = SKColors.Black, IsAntialias = true };
        for (int i = 0; i < icons.Count; i++)
        {
            var rgba = icons[i].ToRgba();
            using var bitmap = new SKBitmap(new SKImageInfo(size, size, SKColorType.Rgba8888, SKAlphaType.Unpremul));
            Marshal.Copy(rgba, 0, bitmap.GetPixels(), rgba.Length);
            int x = pad + (i % cols) * (cell + pad), y = pad + (i / cols) * (cell + label + pad);
            canvas.DrawBitmap(bitmap, new SKRect(x, y, x + cell, y + cell));
            canvas.DrawText($"{classes[i]} ({icons[i].Fidelity:F2})", x, y + cell + 18, SKTextAlign.Left, font, textPaint);
        }
        string path = Path.Combine(outDir, "contact-sheet-resnet18-cifar10-classes.png");
        string temp = path + ".tmp";
        using (var image = surface.Snapshot())
        using (var data = image.Encode(SKEncodedImageFormat.Png, 100))
        using (var file = File.Create(temp))
            data.SaveTo(file);
        File.Move(temp, path, overwrite: true);
        return path;
    }

}
