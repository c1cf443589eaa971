using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text.Json;
using Microsoft.ML.ActivationAtlas.Extraction;
using Microsoft.ML.ActivationAtlas.Inversion;
using Microsoft.ML.ActivationAtlas.Inversion.Network;
using Microsoft.ML.ActivationAtlas.Inversion.Objectives;
using Microsoft.ML.ActivationAtlas.Inversion.Transforms;
using SkiaSharp;

namespace Microsoft.ML.ActivationAtlas.Benchmarks.Inversion;

/// <summary>
/// Icon optimisation speed and fidelity: N icons of S px for K Adam steps (atlas transforms and objective, one
/// attempt) on the googlenet fixture at inception4c and on the real ResNet18 at its 14x14 layer, each followed in the
/// same run by the same optimisation in PyTorch (CPU) on the same ONNX weights; then a labelled contact sheet of
/// ResNet18 icons for the mean last-layer activation of every CIFAR-10 class.
/// Options: --icons 16 --size 80 --steps 64 --sheet-steps 256 --out artifacts/benchmarks/icons --no-torch --no-sheet.
/// </summary>
internal sealed class IconsBenchmark : IBenchmark
{
    public string Name => "icons";

    public string Description => "feature inversion: s/step and fidelity on googlenet + ResNet18 vs PyTorch, CIFAR-10 class contact sheet";

    public int Run(string[] args)
    {
        var a = new BenchmarkArgs(args);
        int icons = a.Get("icons", 16), size = a.Get("size", 80), steps = a.Get("steps", 64), sheetSteps = a.Get("sheet-steps", 256);
        string outDir = Path.GetFullPath(a.Get("out", Path.Combine("artifacts", "benchmarks", "icons")));
        Directory.CreateDirectory(outDir);
        bool torch = !a.Has("no-torch");
        Console.Error.WriteLine($"icons: {icons} icons, {size} px, {steps} steps, {Environment.ProcessorCount} cores, output {outDir}");

        string resnet = IconData.ResNet18, prep = IconData.ResNet18Preprocess;
        var googlenet = Case("googlenet", Path.Combine(SharedData.GradientFixtures, "googlenet", "model.onnx"), "inception4c",
            InputNormalization.ImageNet, null, icons, size, steps, torch, "imagenet");
        var resnet18 = Case("resnet18", resnet, "ReLU347_Output_0",
            MeanImagePreprocessing.Load(prep, size), prep, icons, size, steps, torch, "meanimage");
        string? sheet = a.Has("no-sheet") ? null : ContactSheet(resnet, prep, size, sheetSteps, outDir);

        var result = new Dictionary<string, object?>
        {
            ["benchmark"] = "icons",
            ["icons"] = icons,
            ["size"] = size,
            ["steps"] = steps,
            ["cores"] = Environment.ProcessorCount,
            ["googlenet_inception4c"] = googlenet,
            ["resnet18_ReLU347"] = resnet18,
            ["contact_sheet"] = sheet,
        };
        Console.WriteLine(JsonSerializer.Serialize(result));
        return 0;
    }

    private static Dictionary<string, object?> Case(string name, string modelPath, string layer, InputNormalization normalization, string? prepPath,
        int icons, int size, int steps, bool torch, string torchNorm)
    {
        using var model = OnnxLayerGradientModel.Load(modelPath, layer, new OnnxLayerModelOptions { InputSize = size, Normalization = normalization, MaxBatchSize = icons });
        int c = model.LayerChannels;
        // Targets: means of groups of 4 real CIFAR-10 activations (at the layer's centre, images resized to the icon size).
        var acts = IconData.Activations(model, IconData.CifarPaths(4 * icons / 10 + 1).Take(4 * icons).ToList(), size);
        var random = new Random(11);
        var order = Enumerable.Range(0, acts.Count).OrderBy(_ => random.Next()).ToArray();
        var directions = Enumerable.Range(0, icons).Select(i =>
            Enumerable.Range(0, c).Select(ch => (float)Enumerable.Range(0, 4).Average(k => acts[order[4 * i + k]][ch])).ToArray()).ToList();

        var options = new IconRenderOptions { Size = size, Steps = 1, Attempts = 1, BatchSize = icons, Seed = 1 };
        new IconRenderer(model, options).Render(directions); // builds the gradient session (not timed)
        options.Steps = steps;
        var sw = Stopwatch.StartNew();
        var rendered = new IconRenderer(model, options).Render(directions);
        double perStep = sw.Elapsed.TotalSeconds / steps;
        double fidelity = IconData.Median(rendered.Select(r => r.Fidelity));
        Console.Error.WriteLine($"{name} {layer} [{c}x{model.LayerHeight}x{model.LayerWidth}]: ours {perStep:F3} s/step/batch, median fidelity {fidelity:F3}");
        var r = new Dictionary<string, object?>
        {
            ["layer"] = layer,
            ["layer_shape"] = new[] { c, model.LayerHeight, model.LayerWidth },
            ["ours_s_per_step"] = Math.Round(perStep, 4),
            ["ours_median_fidelity"] = Math.Round(fidelity, 4),
        };
        if (torch)
        {
            var t = RunTorch(modelPath, model.Layer, directions, c, size, steps, torchNorm, prepPath);
            double tps = t.GetProperty("seconds_per_step").GetDouble();
            r["torch_s_per_step"] = Math.Round(tps, 4);
            r["torch_median_fidelity"] = Math.Round(t.GetProperty("median_fidelity").GetDouble(), 4);
            r["torch_threads"] = t.GetProperty("threads").GetInt32();
            r["ratio_ours_over_torch"] = Math.Round(perStep / tps, 3);
            Console.Error.WriteLine($"{name}: torch {tps:F3} s/step/batch, ratio {perStep / tps:F3}");
        }
        return r;
    }

    private static JsonElement RunTorch(string modelPath, string layer, List<float[]> directions, int channels, int size, int steps, string norm, string? prepPath)
    {
        string dir = Path.Combine(Path.GetTempPath(), $"icons-torch-{Environment.ProcessId}");
        Directory.CreateDirectory(dir);
        try
        {
            string dirs = Path.Combine(dir, "directions.f32");
            File.WriteAllBytes(dirs, MemoryMarshal.AsBytes(directions.SelectMany(d => d).ToArray().AsSpan()).ToArray());
            var argv = new List<string> { Script(), modelPath, layer, dirs, channels.ToString(CultureInfo.InvariantCulture), size.ToString(CultureInfo.InvariantCulture), steps.ToString(CultureInfo.InvariantCulture), norm };
            if (prepPath is not null)
            {
                var mean = Onnx.OnnxTensors.ToFloats(Onnx.OnnxModelIO.Load(prepPath).Graph.Initializer[0]);
                string meanPath = Path.Combine(dir, "mean.f32");
                File.WriteAllBytes(meanPath, MemoryMarshal.AsBytes(mean.AsSpan()).ToArray());
                argv.Add(meanPath);
                argv.Add(((int)Math.Sqrt(mean.Length / 3)).ToString(CultureInfo.InvariantCulture));
            }
            var psi = new ProcessStartInfo("/usr/bin/python3", argv) { RedirectStandardOutput = true };
            using var p = Process.Start(psi)!;
            string stdout = p.StandardOutput.ReadToEnd();
            p.WaitForExit();
            if (p.ExitCode != 0)
                throw new InvalidOperationException($"icons_torch.py exited with {p.ExitCode}: {stdout}");
            return JsonDocument.Parse(stdout.Trim().Split('\n')[^1]).RootElement.Clone();
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    private static string Script()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
        {
            string candidate = Path.Combine(d.FullName, "tests", "Microsoft.ML.ActivationAtlas.Benchmarks", "Python", "icons_torch.py");
            if (File.Exists(candidate))
                return candidate;
        }
        throw new FileNotFoundException("tests/Microsoft.ML.ActivationAtlas.Benchmarks/Python/icons_torch.py was not found above the benchmark's folder.");
    }

    /// <summary>Icons for the mean last-layer ResNet18 activation of each CIFAR-10 class, labelled, as one PNG.</summary>
    private static string ContactSheet(string resnet, string prep, int size, int steps, string outDir)
    {
        const string layer = "ReLU393_Output_0";
        // This CNTK export pads its stride-2 blocks asymmetrically, so the 7x7 block needs an input size divisible by 32:
        // the icons are resized to the next such size for the network.
        int input = (size + 31) / 32 * 32;
        using var model = OnnxLayerGradientModel.Load(resnet, layer, new OnnxLayerModelOptions { InputSize = input, Normalization = MeanImagePreprocessing.Load(prep, input) });
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
