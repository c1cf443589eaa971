using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Microsoft.ML.ActivationAtlas.Gradients;
using Microsoft.ML.ActivationAtlas.Onnx;
using Microsoft.ML.OnnxRuntime;

namespace Microsoft.ML.ActivationAtlas.Benchmarks;

/// <summary>
/// <c>gradients</c>: forward + backward from the input to <c>inception4c</c> of the googlenet fixture (batch 8 at
/// 224x224), ms per batch with our ONNX gradient graph in ONNX Runtime, then PyTorch on the CPU on the same model
/// (an ONNX-to-torch interpreter, Python/time_torch_vjp.py) in the same run; ratio ours/torch. With
/// <c>--model vit_tiny</c>: the vit_tiny fixture from the input to the third block's output ([N,65,128], batch 8 at
/// 64 px) against torchvision's VisionTransformer of the same architecture (Python/time_torch_vit_vjp.py).
/// </summary>
internal sealed class GradientsBenchmark : IBenchmark
{
    public string Name => "gradients";

    public string Description => "VJP input<-inception4c on googlenet, ms/batch vs PyTorch CPU: [--batch 8] [--iterations 5] [--threads 2] [--model googlenet|vit_tiny]";

    public int Run(string[] args)
    {
        var a = new BenchmarkArgs(args);
        string which = a.Get("model", "googlenet");
        if (which == "vit_tiny")
            return RunVit(a);
        if (which != "googlenet")
        {
            Console.Error.WriteLine($"gradients: --model {which} is neither googlenet nor vit_tiny.");
            return 2;
        }
        int batch = a.Get("batch", 8), iterations = a.Get("iterations", 5), threads = a.Get("threads", 2), size = 224;
        string folder = Path.Combine(SharedData.Root, "fixtures", "onnx-gradients", "googlenet");
        string modelPath = Path.Combine(folder, "model.onnx");
        const string layer = "/m/inception4c/Concat_out";
        var model = OnnxModelIO.Load(modelPath);
        var vjp = GradientGraphBuilder.BuildVjp(model, new VjpOptions { Of = layer });
        using var session = OnnxSessionFactory.Create(vjp, new OnnxSessionOptions { IntraOpThreads = threads });

        var rng = new Random(0);
        var x = new float[batch * 3 * size * size];
        for (int i = 0; i < x.Length; i++) x[i] = (float)rng.NextDouble();
        var seed = new float[batch * 512 * 14 * 14];
        Array.Fill(seed, 1f);
        using var xValue = OrtValue.CreateTensorValueFromMemory(x, [batch, 3, size, size]);
        using var seedValue = OrtValue.CreateTensorValueFromMemory(seed, [batch, 512, 14, 14]);
        using var runOptions = new RunOptions();
        string[] inputs = ["input", "vjp_seed"], outputs = ["vjp_gradient"];
        void Step()
        {
            using var r = session.Run(runOptions, inputs, [xValue, seedValue], outputs);
        }
        Step();
        var sw = Stopwatch.StartNew();
        for (int i = 0; i < iterations; i++) Step();
        double ours = sw.Elapsed.TotalMilliseconds / iterations;
        Console.WriteLine($"ours (ONNX Runtime, {threads} threads): {ours:F1} ms/batch");

        double torch = TorchTiming.MeanMilliseconds("time_torch_vjp.py", modelPath, layer, batch, size, iterations, threads);
        Console.WriteLine($"PyTorch CPU ({threads} threads): {torch:F1} ms/batch");
        Report("googlenet", "inception4c", batch, size, threads, ours, torch);
        return 0;
    }

    /// <summary>vit_tiny: input gradient of the third block's output (seed of ones), ours vs torchvision's ViT.</summary>
    private static int RunVit(BenchmarkArgs a)
    {
        int batch = a.Get("batch", 8), iterations = a.Get("iterations", 5), threads = a.Get("threads", 2), size = 64;
        const string layer = "/m/encoder/layers/encoder_layer_2/Add_1_out";
        var model = OnnxModelIO.Load(Path.Combine(SharedData.Root, "fixtures", "onnx-gradients", "vit_tiny", "model.onnx"));
        using var session = OnnxSessionFactory.Create(GradientGraphBuilder.BuildVjp(model, new VjpOptions { Of = layer }),
            new OnnxSessionOptions { IntraOpThreads = threads });
        var rng = new Random(0);
        var x = new float[batch * 3 * size * size];
        for (int i = 0; i < x.Length; i++) x[i] = (float)rng.NextDouble();
        var seed = new float[batch * 65 * 128];
        Array.Fill(seed, 1f);
        using var xValue = OrtValue.CreateTensorValueFromMemory(x, [batch, 3, size, size]);
        using var seedValue = OrtValue.CreateTensorValueFromMemory(seed, [batch, 65, 128]);
        using var runOptions = new RunOptions();
        void Step()
        {
            using var r = session.Run(runOptions, ["input", "vjp_seed"], [xValue, seedValue], ["vjp_gradient"]);
        }
        Step();
        var sw = Stopwatch.StartNew();
        for (int i = 0; i < iterations; i++) Step();
        double ours = sw.Elapsed.TotalMilliseconds / iterations;
        Console.WriteLine($"ours (ONNX Runtime, {threads} threads): {ours:F1} ms/batch");

        double torch = TorchTiming.MeanMilliseconds("time_torch_vit_vjp.py", batch, iterations, threads);
        Console.WriteLine($"PyTorch CPU, torchvision VisionTransformer ({threads} threads): {torch:F1} ms/batch");
        Report("vit_tiny", "encoder_layer_2", batch, size, threads, ours, torch);
        return 0;
    }

    /// <summary>Prints the benchmark's JSON line.</summary>
    private static void Report(string model, string layer, int batch, int size, int threads, double ours, double torch)
        => Console.WriteLine(JsonSerializer.Serialize(new Dictionary<string, object>
        {
            ["benchmark"] = "gradients",
            ["model"] = model,
            ["layer"] = layer,
            ["batch"] = batch,
            ["image_size"] = size,
            ["threads"] = threads,
            ["ours_ms_per_batch"] = Math.Round(ours, 1),
            ["torch_ms_per_batch"] = Math.Round(torch, 1),
            ["ratio_ours_over_torch"] = Math.Round(ours / torch, 3),
        }));
}
