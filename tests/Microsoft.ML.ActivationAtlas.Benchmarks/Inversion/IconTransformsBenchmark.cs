using System.Globalization;
using System.Text.Json;
using Microsoft.ML.ActivationAtlas.Inversion;
using Microsoft.ML.ActivationAtlas.Inversion.Network;
using Microsoft.ML.ActivationAtlas.Inversion.Parameterization;
using Microsoft.ML.ActivationAtlas.Inversion.Transforms;

namespace Microsoft.ML.ActivationAtlas.Benchmarks.Inversion;

/// <summary>
/// Icon quality of image parameterisations and transformation-robustness lists on the shared gradient fixtures, a
/// vision transformer (<c>vit_tiny</c>, block 3's tokens, objective at the centre patch token) and a convolutional
/// network (<c>convnext_tiny</c>, the third stage, objective at the centre position). Targets are real activations of
/// CIFAR-10 test images at the objective position (the fixtures' weights are random, so fidelity is the measure that
/// means something; plausibility, the cosine to the nearest activation of other CIFAR-10 images, is reported beside
/// it). Because random networks give every image a large shared activation component, the table also reports the
/// centred fidelity: the cosine of icon and target after subtracting the images' mean activation.
/// Settings: <c>untrained</c> (0 steps), <c>fourier</c> (lucid's standard transforms, Fourier basis: the library's
/// default), <c>maco</c> (MACO basis with the CIFAR-10 images' amplitude spectrum, standard transforms), <c>atlas</c>
/// (the article's list), <c>strong</c> (pad 16, jitter 16, scale 0.8-1.2, rotate +-15, jitter 8), <c>patch</c>
/// (shifts by whole patches, up to one each way: <see cref="RobustnessTransforms.PatchAligned"/>), <c>patch2</c> (up
/// to two), <c>maco-patch</c> (MACO with patch-aligned shifts), <c>none</c>, <c>default</c> (the renderer's default for the layer: patch-aligned on a token layer,
/// lucid's standard transforms otherwise). The patch is the network input size over the layer's width (8 px for both).
/// Options: --models vit_tiny,convnext_tiny --targets 16 --rows 200 --steps 64,128,256 --batch 16 --seed 3
/// --settings untrained,fourier,maco,atlas,strong,patch,patch2,none --out artifacts/benchmarks/icon-transforms.
/// </summary>
internal sealed class IconTransformsBenchmark : IBenchmark
{
    public string Name => "icon-transforms";

    public string Description => "feature inversion on a ViT and a ConvNeXt fixture: median fidelity of parameterisations and transformation-robustness lists";

    private sealed record Result(string Model, string Setting, int Steps, int Icons, double Fidelity, double CentredFidelity, double Plausibility);

    public int Run(string[] args)
    {
        var a = new BenchmarkArgs(args);
        string[] models = a.Get("models", "vit_tiny,convnext_tiny").Split(',', StringSplitOptions.RemoveEmptyEntries);
        string[] settings = a.Get("settings", "untrained,fourier,maco,atlas,strong,patch,patch2,none").Split(',', StringSplitOptions.RemoveEmptyEntries);
        int[] steps = a.Get("steps", "64,128,256").Split(',').Select(s => int.Parse(s, CultureInfo.InvariantCulture)).ToArray();
        int targets = a.Get("targets", 16), rowsCount = a.Get("rows", 200), batch = a.Get("batch", 16), seed = a.Get("seed", 3);
        string outDir = Path.GetFullPath(a.Get("out", Path.Combine("artifacts", "benchmarks", "icon-transforms")));
        Directory.CreateDirectory(outDir);

        var table = new List<Result>();
        foreach (string name in models)
        {
            string folder = Path.Combine(SharedData.GradientFixtures, name);
            using var meta = JsonDocument.Parse(File.ReadAllText(Path.Combine(folder, "meta.json")));
            string layer = meta.RootElement.GetProperty("layer_tensor").GetString()!;
            using var model = OnnxLayerGradientModel.Load(Path.Combine(folder, "model.onnx"), layer, new OnnxLayerModelOptions { MaxBatchSize = batch });
            int size = model.InputHeight, patch = size / model.LayerWidth;
            // Targets: every class's images in turn (one per class, then the next); other images are the plausibility rows.
            var paths = IconData.CifarPaths((targets + rowsCount + 9) / 10).ToList();
            var ordered = paths.Select((p, i) => (p, i)).OrderBy(t => t.i % ((targets + rowsCount + 9) / 10)).ThenBy(t => t.i).Select(t => t.p).ToList();
            var acts = IconData.Activations(model, ordered.Take(targets + rowsCount).ToList(), size);
            var directions = acts.Take(targets).ToList();
            var rows = acts.Skip(targets).SelectMany(v => v).ToArray();
            int c = model.LayerChannels;
            var mean = new float[c];
            foreach (var v in acts)
                System.Numerics.Tensors.TensorPrimitives.Add(mean, v, mean);
            System.Numerics.Tensors.TensorPrimitives.Multiply(mean, 1f / acts.Count, mean);
            var images = new float[rowsCount * 3 * size * size];
            for (int i = 0; i < rowsCount; i++)
                IconData.LoadImage(ordered[targets + i], size, images.AsSpan(i * 3 * size * size, 3 * size * size));
            var maco = MacoImageParameterization.MeanAmplitude(images, rowsCount, size);
            Console.Error.WriteLine($"icon-transforms: {name} layer {layer} {c}x{model.LayerHeight}x{model.LayerWidth}{(model.Tokens is null ? "" : " tokens")}, " +
                $"input {size} px, patch {patch} px, {targets} targets, {rowsCount} plausibility rows");

            foreach (string setting in settings)
                foreach (int budget in setting == "untrained" ? [0] : steps)
                {
                    var options = new IconRenderOptions { Size = size, Steps = budget, BatchSize = batch, Seed = seed, Transforms = RobustnessTransforms.LucidStandard(size) };
                    switch (setting)
                    {
                        case "untrained" or "fourier":
                            break;
                        case "default":
                            options.Transforms = null;
                            break;
                        case "maco":
                            options.Basis = ImageBasis.Maco;
                            options.MacoMagnitude = maco;
                            break;
                        case "atlas":
                            options.Transforms = RobustnessTransforms.Atlas(size);
                            break;
                        case "strong":
                            options.Transforms =
                            [
                                new PadTransform(16, 0.5f),
                                new JitterTransform(16),
                                new RandomScaleTransform(Enumerable.Range(0, 9).Select(i => 0.8 + i * 0.05)),
                                new RandomRotateTransform(Enumerable.Range(-15, 31).Select(d => (double)d)),
                                new JitterTransform(8),
                                new CropOrPadTransform(size, size),
                            ];
                            break;
                        case "maco-patch":
                            options.Basis = ImageBasis.Maco;
                            options.MacoMagnitude = maco;
                            options.Transforms = RobustnessTransforms.PatchAligned(patch);
                            break;
                        case "patch":
                            options.Transforms = RobustnessTransforms.PatchAligned(patch);
                            break;
                        case "patch2":
                            options.Transforms = RobustnessTransforms.PatchAligned(patch, 2);
                            break;
                        case "none":
                            options.Transforms = RobustnessTransforms.None;
                            break;
                        default:
                            throw new ArgumentException($"Unknown setting '{setting}'.");
                    }
                    var icons = new IconRenderer(model, options).Render(directions);
                    var centred = icons.Select((icon, i) => Centred(icon.Activation, directions[i], mean));
                    var r = new Result(name, setting, budget, icons.Count, Comparison.Median(icons.Select(i => i.Fidelity)), Comparison.Median(centred),
                        Comparison.Median(IconQualityMetrics.Plausibility(icons, rows)));
                    table.Add(r);
                    Console.Error.WriteLine($"  {Format(r)}");
                }
        }

        Console.Error.WriteLine();
        Console.Error.WriteLine($"{"model",-14} {"setting",-10} {"steps",5} {"fidelity",8} {"centred",8} {"plausib.",8}");
        foreach (var r in table)
            Console.Error.WriteLine(Format(r));
        File.WriteAllText(Path.Combine(outDir, "icon-transforms.json"), JsonSerializer.Serialize(table));
        Console.WriteLine(JsonSerializer.Serialize(new { benchmark = Name, results = table }));
        return 0;
    }

    private static double Centred(float[] activation, float[] target, float[] mean)
    {
        var x = new float[mean.Length];
        var y = new float[mean.Length];
        System.Numerics.Tensors.TensorPrimitives.Subtract(activation, mean, x);
        System.Numerics.Tensors.TensorPrimitives.Subtract(target, mean, y);
        return Microsoft.ML.ActivationAtlas.Inversion.Objectives.ActivationObjective.Cosine(x, y);
    }

    private static string Format(Result r) =>
        string.Create(CultureInfo.InvariantCulture, $"{r.Model,-14} {r.Setting,-10} {r.Steps,5} {r.Fidelity,8:F3} {r.CentredFidelity,8:F3} {r.Plausibility,8:F3}");
}
