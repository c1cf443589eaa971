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
/// <c>--profile</c> also runs ONNX Runtime's profiler over the same iterations and reports the kernel time per operator
/// type, split into the forward nodes of the model and the nodes the gradient builder added (<c>--model resnet18</c>
/// profiles the icons' graph instead: ResNet18 to ReLU347_Output_0 at 80 px); <c>--no-torch</c> skips PyTorch.
/// </summary>
internal sealed class GradientsBenchmark : IBenchmark
{
    public string Name => "gradients";

    public string Description => "VJP input<-inception4c on googlenet, ms/batch vs PyTorch CPU: [--batch 8] [--iterations 5] [--threads 2] [--model googlenet|vit_tiny|resnet18] [--profile] [--no-torch]";

    public int Run(string[] args)
    {
        var a = new BenchmarkArgs(args);
        string which = a.Get("model", "googlenet");
        if (which == "vit_tiny")
            return RunVit(a);
        if (which == "resnet18")
            return ProfileResNet18(a.Get("batch", 16), a.Get("iterations", 5), a.Get("threads", 2));
        if (which != "googlenet")
        {
            Console.Error.WriteLine($"gradients: --model {which} is not googlenet, vit_tiny or resnet18.");
            return 2;
        }
        int batch = a.Get("batch", 8), iterations = a.Get("iterations", 5), threads = a.Get("threads", 2), size = 224;
        string folder = Path.Combine(SharedData.Root, "fixtures", "onnx-gradients", "googlenet");
        string modelPath = Path.Combine(folder, "model.onnx");
        const string layer = "/m/inception4c/Concat_out";
        var model = OnnxModelIO.Load(modelPath);
        var vjp = GradientGraphBuilder.BuildVjp(model, new VjpOptions { Of = layer });
        Dictionary<string, object>? profile = a.Has("profile") ? Profile(model, vjp, threads, iterations,
            [("input", [batch, 3, size, size]), ("vjp_seed", [batch, 512, 14, 14])], ["vjp_gradient"]) : null;
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
        if (a.Has("no-torch"))
        {
            Report("googlenet", "inception4c", batch, size, threads, ours, null, profile);
            return 0;
        }

        double torch = TorchTiming.MeanMilliseconds("time_torch_vjp.py", modelPath, layer, batch, size, iterations, threads);
        Console.WriteLine($"PyTorch CPU ({threads} threads): {torch:F1} ms/batch");
        Report("googlenet", "inception4c", batch, size, threads, ours, torch, profile);
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
    private static void Report(string model, string layer, int batch, int size, int threads, double ours, double? torch,
        Dictionary<string, object>? profile = null)
    {
        var line = new Dictionary<string, object?>
        {
            ["benchmark"] = "gradients",
            ["model"] = model,
            ["layer"] = layer,
            ["batch"] = batch,
            ["image_size"] = size,
            ["threads"] = threads,
            ["ours_ms_per_batch"] = Math.Round(ours, 1),
        };
        if (torch is double t)
        {
            line["torch_ms_per_batch"] = Math.Round(t, 1);
            line["ratio_ours_over_torch"] = Math.Round(ours / t, 3);
        }
        if (profile is not null)
            line["profile"] = profile;
        Console.WriteLine(JsonSerializer.Serialize(line));
    }

    // The icons' graph: ResNet18 cut at its 14x14 block, run at 80 px, with the objective seed as an input.
    private static int ProfileResNet18(int batch, int iterations, int threads)
    {
        const string layer = "ReLU347_Output_0";
        const int size = 80;
        var model = OnnxGraphSurgery.MakeBatchDynamic(OnnxModelIO.Load(Inversion.IconData.ResNet18));
        string input = OnnxGraphSurgery.RealInputs(model.Graph).First();
        var info = model.Graph.Input.First(i => i.Name == input).Type.TensorType.Shape;
        info.Dim[2] = new Onnx.Protobuf.TensorShapeProto.Types.Dimension { DimValue = size };
        info.Dim[3] = new Onnx.Protobuf.TensorShapeProto.Types.Dimension { DimValue = size };
        var cut = OnnxGraphSurgery.MakeBatchDynamic(OnnxGraphSurgery.CutInputToLayer(model, layer));
        var vjp = GradientGraphBuilder.BuildVjp(cut, new VjpOptions { Of = layer, WithRespectTo = input });
        var profile = Profile(cut, vjp, threads, iterations, [(input, [batch, 3, size, size]), ("vjp_seed", [batch, 256, 5, 5])], ["vjp_gradient"]);
        Console.WriteLine(JsonSerializer.Serialize(new Dictionary<string, object?>
        {
            ["benchmark"] = "gradients", ["model"] = "resnet18", ["layer"] = layer, ["batch"] = batch, ["image_size"] = size, ["threads"] = threads, ["profile"] = profile,
        }));
        return 0;
    }

    // ONNX Runtime's profiler over `iterations` runs (after one warm-up): kernel microseconds per operator type, for the
    // model's own (forward) nodes and for the nodes the gradient builder added (backward).
    private static Dictionary<string, object> Profile(Onnx.Protobuf.ModelProto forward, Onnx.Protobuf.ModelProto vjp, int threads, int iterations,
        (string Name, long[] Shape)[] inputs, string[] outputs)
    {
        var forwardNodes = forward.Graph.Node.Select(n => n.Name).Where(n => n.Length > 0).ToHashSet(StringComparer.Ordinal);
        string prefix = Path.Combine(Path.GetTempPath(), $"ort-profile-{Environment.ProcessId}");
        using var so = new SessionOptions
        {
            GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL,
            ExecutionMode = ExecutionMode.ORT_SEQUENTIAL,
            IntraOpNumThreads = threads,
            EnableProfiling = true,
            ProfileOutputPathPrefix = prefix,
        };
        so.AddSessionConfigEntry("session.intra_op.allow_spinning", "0");
        using var session = new InferenceSession(OnnxModelIO.ToBytes(vjp), so);
        var rng = new Random(0);
        var values = inputs.Select(i =>
        {
            var shape = i.Shape;
            var data = new float[shape.Aggregate(1L, (x, y) => x * y)];
            for (int k = 0; k < data.Length; k++) data[k] = (float)rng.NextDouble();
            return OrtValue.CreateTensorValueFromMemory(data, shape);
        }).ToArray();
        using var ro = new RunOptions();
        var names = inputs.Select(i => i.Name).ToArray();
        for (int r = 0; r <= iterations; r++)
        {
            using var result = session.Run(ro, names, values, outputs);
        }
        string file = session.EndProfiling();
        foreach (var v in values) v.Dispose();
        var totals = new Dictionary<(string Op, bool Backward), double>();
        using (var doc = JsonDocument.Parse(File.ReadAllText(file)))
        {
            foreach (var e in doc.RootElement.EnumerateArray())
            {
                if (e.GetProperty("cat").GetString() != "Node" || !e.TryGetProperty("args", out var args) || !args.TryGetProperty("op_name", out var op))
                    continue;
                string name = e.GetProperty("name").GetString() ?? "";
                if (!name.EndsWith("_kernel_time", StringComparison.Ordinal))
                    continue;
                string node = name[..^"_kernel_time".Length];
                var key = (op.GetString() ?? "?", !forwardNodes.Contains(node));
                totals[key] = totals.GetValueOrDefault(key) + e.GetProperty("dur").GetDouble();
            }
        }
        File.Delete(file);
        double all = totals.Values.Sum();
        var ops = totals.OrderByDescending(kv => kv.Value).Take(15).Select(kv => new Dictionary<string, object>
        {
            ["op"] = kv.Key.Op,
            ["part"] = kv.Key.Backward ? "backward" : "forward",
            ["ms_per_run"] = Math.Round(kv.Value / 1000.0 / (iterations + 1), 2),
            ["share"] = Math.Round(kv.Value / all, 3),
        }).ToList();
        foreach (var o in ops)
            Console.Error.WriteLine($"  {o["op"],-24} {o["part"],-9} {o["ms_per_run"],8} ms/run  {o["share"]:P1}");
        return new Dictionary<string, object>
        {
            ["kernel_ms_per_run"] = Math.Round(all / 1000.0 / (iterations + 1), 1),
            ["backward_share"] = Math.Round(totals.Where(kv => kv.Key.Backward).Sum(kv => kv.Value) / all, 3),
            ["top_ops"] = ops,
        };
    }
}
