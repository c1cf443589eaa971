using System.Diagnostics;
using System.Text.Json;
using Microsoft.ML.ActivationAtlas.Gradients;
using Microsoft.ML.ActivationAtlas.Onnx;
using Microsoft.ML.OnnxRuntime;

namespace Microsoft.ML.ActivationAtlas.Benchmarks;

/// <summary>
/// <c>gradients</c>: forward + backward (the input gradient of a seed of ones at the layer; batch 8 at 224 px) of a
/// network cut at a layer, ms per batch, ours (our ONNX gradient graph in ONNX Runtime) against PyTorch on the CPU with
/// torchvision's own modules carrying the same weights (Python/gradients_torch.py, a worker process): googlenet to
/// <c>inception4c</c> (the fixture), ResNet18 to <c>layer3</c> / <c>layer4</c> (the model package), vit_tiny to its
/// third block (the fixture, 64 px). Both sides get the same thread count (<c>--threads</c>, default the cores) and
/// wait policy (<c>--spin</c>; see <see cref="Comparison.Read"/>), are warmed up and run alternating rounds (ours, PyTorch, ours, ...); medians. PyTorch's layer is checked against ONNX
/// Runtime's on one input (1e-4 relative) first. Reports the achieved GFLOP/s of both against the machine's measured
/// matrix-multiply peak (ONNX Runtime MatMul, torch.mm, numpy.dot). <c>--profile</c> also runs ONNX Runtime's profiler
/// over the same iterations and reports the kernel time per operator type, split into the forward nodes and the nodes
/// the gradient builder added (<c>--model resnet18</c> profiles the icons' graph instead: ResNet18 to ReLU347_Output_0
/// at 80 px); <c>--no-torch</c> skips PyTorch.
/// </summary>
internal sealed class GradientsBenchmark : IBenchmark
{
    public string Name => "gradients";

    public string Description => "forward + input gradient at a layer, ms/batch vs PyTorch/torchvision CPU: [--model googlenet|resnet18-layer3|resnet18-layer4|vit_tiny] [--batch 8] [--iterations 5] [--rounds 5] [--threads cores] [--spin] [--profile [--profile-nodes N]] [--no-torch]";

    // One network cut at one layer: the ONNX file and tensor, and the torchvision module and child to cut after.
    private sealed record Case(string Name, string Path, string Layer, string TorchModel, string Cut, int Size);

    private static Case? Resolve(string which) => which switch
    {
        "googlenet" => new(which, Path.Combine(SharedData.GradientFixtures, "googlenet", "model.onnx"), "/m/inception4c/Concat_out", "googlenet", "inception4c", 224),
        "vit_tiny" => new(which, Path.Combine(SharedData.GradientFixtures, "vit_tiny", "model.onnx"), "/m/encoder/layers/encoder_layer_2/Add_1_out", "vit_tiny", "encoder_layer_2", 64),
        "resnet18-layer3" => new(which, Inversion.IconData.ResNet18, "ReLU347_Output_0", "resnet18", "layer3", 224),
        "resnet18-layer4" => new(which, Inversion.IconData.ResNet18, "ReLU393_Output_0", "resnet18", "layer4", 224),
        _ => null,
    };

    public int Run(string[] args)
    {
        var a = new BenchmarkArgs(args);
        string which = a.Get("model", "googlenet");
        var settings = Comparison.Read(a);
        int threads = settings.Threads;
        if (which == "resnet18")
            return ProfileResNet18(a.Get("batch", 16), a.Get("iterations", 5), threads, a.Get("profile-nodes", 0));
        if (Resolve(which) is not { } c)
        {
            Console.Error.WriteLine($"gradients: --model {which} is not googlenet, resnet18-layer3, resnet18-layer4, vit_tiny or resnet18 (the icons' graph profile).");
            return 2;
        }
        int batch = a.Get("batch", 8), iterations = a.Get("iterations", 5), rounds = a.Get("rounds", 5);
        var model = OnnxGraphSurgery.MakeBatchDynamic(OnnxModelIO.Load(c.Path));
        string input = OnnxGraphSurgery.RealInputs(model.Graph).First();
        var cut = OnnxGraphSurgery.MakeBatchDynamic(OnnxGraphSurgery.CutInputToLayer(model, c.Layer));
        var vjp = GradientGraphBuilder.BuildVjp(cut, new VjpOptions { Of = c.Layer, WithRespectTo = input });
        using var session = OnnxSessionFactory.Create(vjp, settings.Session());
        using var runOptions = new RunOptions();
        Console.Error.WriteLine($"gradients: {c.Name} to {c.Layer}, batch {batch} at {c.Size} px, {threads} threads, {rounds} rounds of {iterations}");

        // The check input: two seeded images; ONNX Runtime's layer and input gradient (seed of ones) for PyTorch to match.
        long[] checkShape = [2, 3, c.Size, c.Size];
        var xCheck = Uniform(2 * 3 * c.Size * c.Size, 1);
        float[] layerCheck, gradientCheck;
        long[] layerShape;
        using (var xv = OrtValue.CreateTensorValueFromMemory(xCheck, checkShape))
        {
            using (var forward = OnnxSessionFactory.Create(cut, settings.Session()))
            using (var probe = forward.Run(runOptions, [input], [xv], [c.Layer]))
            {
                layerShape = probe[0].GetTensorTypeAndShape().Shape;
                layerCheck = probe[0].GetTensorDataAsSpan<float>().ToArray();
            }
            var ones = new float[layerCheck.Length];
            Array.Fill(ones, 1f);
            using var sv = OrtValue.CreateTensorValueFromMemory(ones, layerShape);
            using var r = session.Run(runOptions, [input, "vjp_seed"], [xv, sv], ["vjp_gradient"]);
            gradientCheck = r[0].GetTensorDataAsSpan<float>().ToArray();
        }

        Dictionary<string, object>? profile = a.Has("profile") ? Profile(cut, vjp, threads, iterations,
            [(input, [batch, 3, c.Size, c.Size]), ("vjp_seed", [batch, .. layerShape[1..]])], ["vjp_gradient"], a.Get("profile-nodes", 0)) : null;

        var x = Uniform(batch * 3 * c.Size * c.Size, 0);
        long[] seedShape = [batch, .. layerShape[1..]];
        var seed = new float[seedShape.Aggregate(1L, (p, d) => p * d)];
        Array.Fill(seed, 1f);
        var gradient = new float[x.Length];
        using var xValue = OrtValue.CreateTensorValueFromMemory(x, [batch, 3, c.Size, c.Size]);
        using var seedValue = OrtValue.CreateTensorValueFromMemory(seed, seedShape);
        using var gradientValue = OrtValue.CreateTensorValueFromMemory(gradient, [batch, 3, c.Size, c.Size]);
        string[] inputs = [input, "vjp_seed"], outputs = ["vjp_gradient"];
        void Step() => session.Run(runOptions, inputs, [xValue, seedValue], outputs, [gradientValue]);
        double OursRound()
        {
            var sw = Stopwatch.StartNew();
            for (int i = 0; i < iterations; i++)
                Step();
            return sw.Elapsed.TotalMilliseconds / iterations;
        }
        Step();
        Step();
        double ortPeak = Comparison.OnnxRuntimeMatMulPeak(settings);

        var line = new Dictionary<string, object?>
        {
            ["benchmark"] = "gradients",
            ["model"] = c.Name,
            ["layer"] = c.Layer,
            ["layer_shape"] = layerShape[1..],
            ["batch"] = batch,
            ["image_size"] = c.Size,
            ["rounds"] = rounds,
            ["iterations_per_round"] = iterations,
        };
        settings.Describe(line);
        if (a.Has("no-torch"))
        {
            var (ours, _) = Comparison.Alternate(rounds, "ms/batch", OursRound, null);
            line["ours_ms_per_batch"] = Math.Round(Comparison.Median(ours), 1);
            line["ours_rounds_ms"] = ours.Select(v => Math.Round(v, 1)).ToArray();
            line["matmul_peak_gflops"] = new Dictionary<string, double> { ["onnxruntime_matmul"] = ortPeak };
        }
        else
        {
            string dir = Directory.CreateTempSubdirectory("gradients-torch-").FullName;
            try
            {
                Comparison.WriteFloats(Path.Combine(dir, "x.f32"), xCheck);
                Comparison.WriteFloats(Path.Combine(dir, "layer.f32"), layerCheck);
                Comparison.WriteFloats(Path.Combine(dir, "gradient.f32"), gradientCheck);
                using var torch = TorchWorker.Start("gradients_torch.py", settings,
                    "--model", c.TorchModel, "--onnx", c.Path, "--cut", c.Cut, "--batch", batch, "--size", c.Size,
                    "--iterations", iterations, "--check-input", Path.Combine(dir, "x.f32"),
                    "--check-layer", Path.Combine(dir, "layer.f32"), "--check-gradient", Path.Combine(dir, "gradient.f32"),
                    "--check-shape", Comparison.Shape(checkShape), "--layer-shape", Comparison.Shape(layerShape));
                var (ours, theirs) = Comparison.Alternate(rounds, "ms/batch", OursRound, () => torch.Run("round")["ms_per_batch"]!.GetValue<double>());
                double o = Comparison.Median(ours), t = Comparison.Median(theirs);
                double flops = batch * (torch.Info["forward_flops_per_image"]!.GetValue<double>() + torch.Info["backward_flops_per_image"]!.GetValue<double>());
                line["ours_ms_per_batch"] = Math.Round(o, 1);
                line["torch_ms_per_batch"] = Math.Round(t, 1);
                line["ratio_ours_over_torch"] = Math.Round(o / t, 3);
                line["ours_rounds_ms"] = ours.Select(v => Math.Round(v, 1)).ToArray();
                line["torch_rounds_ms"] = theirs.Select(v => Math.Round(v, 1)).ToArray();
                Comparison.AddThroughput(line, torch.Info, flops, o, t, ortPeak);
                Console.Error.WriteLine($"ours {o:F1} ms/batch ({line["ours_gflops"]} GFLOP/s), PyTorch {t:F1} ms/batch ({line["torch_gflops"]} GFLOP/s), ratio {o / t:F3}");
            }
            finally
            {
                Directory.Delete(dir, recursive: true);
            }
        }
        if (profile is not null)
            line["profile"] = profile;
        Console.WriteLine(JsonSerializer.Serialize(line));
        return 0;
    }

    // Seeded uniform [0, 1) values.
    private static float[] Uniform(int n, int seed)
    {
        var rng = new Random(seed);
        var x = new float[n];
        for (int i = 0; i < x.Length; i++)
            x[i] = (float)rng.NextDouble();
        return x;
    }

    // The icons' graph: ResNet18 cut at its 14x14 block, run at 80 px, with the objective seed as an input.
    private static int ProfileResNet18(int batch, int iterations, int threads, int topNodes)
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
        var profile = Profile(cut, vjp, threads, iterations, [(input, [batch, 3, size, size]), ("vjp_seed", [batch, 256, 5, 5])], ["vjp_gradient"], topNodes);
        Console.WriteLine(JsonSerializer.Serialize(new Dictionary<string, object?>
        {
            ["benchmark"] = "gradients", ["model"] = "resnet18", ["layer"] = layer, ["batch"] = batch, ["image_size"] = size, ["threads"] = threads, ["profile"] = profile,
        }));
        return 0;
    }

    // ONNX Runtime's profiler over `iterations` runs (after one warm-up): kernel microseconds per operator type, for the
    // model's own (forward) nodes and for the nodes the gradient builder added (backward).
    private static Dictionary<string, object> Profile(Onnx.Protobuf.ModelProto forward, Onnx.Protobuf.ModelProto vjp, int threads, int iterations,
        (string Name, long[] Shape)[] inputs, string[] outputs, int topNodes = 0)
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
        var perNode = new Dictionary<string, (string Op, string Shapes, double Us)>(StringComparer.Ordinal);
        using (var doc = JsonDocument.Parse(File.ReadAllText(file)))
        {
            // The warm-up run (the first model_run) allocates the arena's memory and is left out.
            double warmUpEnd = doc.RootElement.EnumerateArray()
                .Where(e => e.GetProperty("cat").GetString() == "Session" && e.GetProperty("name").GetString() == "model_run")
                .Select(e => e.GetProperty("ts").GetDouble() + e.GetProperty("dur").GetDouble()).DefaultIfEmpty(0).Min();
            foreach (var e in doc.RootElement.EnumerateArray())
            {
                if (e.GetProperty("cat").GetString() != "Node" || !e.TryGetProperty("args", out var args) || !args.TryGetProperty("op_name", out var op)
                    || e.GetProperty("ts").GetDouble() < warmUpEnd)
                    continue;
                string name = e.GetProperty("name").GetString() ?? "";
                if (!name.EndsWith("_kernel_time", StringComparison.Ordinal))
                    continue;
                string node = name[..^"_kernel_time".Length];
                var key = (op.GetString() ?? "?", !forwardNodes.Contains(node));
                double dur = e.GetProperty("dur").GetDouble();
                totals[key] = totals.GetValueOrDefault(key) + dur;
                string shapes = args.TryGetProperty("input_type_shape", out var its) ? its.GetRawText() : "";
                var previous = perNode.GetValueOrDefault(node, (key.Item1, shapes, 0.0));
                perNode[node] = (previous.Item1, previous.Item2, previous.Item3 + dur);
            }
        }
        File.Delete(file);
        double all = totals.Values.Sum();
        var ops = totals.OrderByDescending(kv => kv.Value).Take(15).Select(kv => new Dictionary<string, object>
        {
            ["op"] = kv.Key.Op,
            ["part"] = kv.Key.Backward ? "backward" : "forward",
            ["ms_per_run"] = Math.Round(kv.Value / 1000.0 / iterations, 2),
            ["share"] = Math.Round(kv.Value / all, 3),
        }).ToList();
        foreach (var o in ops)
            Console.Error.WriteLine($"  {o["op"],-24} {o["part"],-9} {o["ms_per_run"],8} ms/run  {o["share"]:P1}");
        if (topNodes > 0)
        {
            Console.Error.WriteLine($"  the {topNodes} slowest nodes:");
            foreach (var (node, v) in perNode.OrderByDescending(kv => kv.Value.Us).Take(topNodes))
                Console.Error.WriteLine($"  {v.Us / 1000.0 / iterations,8:F2} ms/run  {v.Op,-20} {node}  {v.Shapes.Replace("\"float\":", "").Replace("\"", "")}");
        }
        return new Dictionary<string, object>
        {
            ["kernel_ms_per_run"] = Math.Round(all / 1000.0 / iterations, 1),
            ["backward_share"] = Math.Round(totals.Where(kv => kv.Key.Backward).Sum(kv => kv.Value) / all, 3),
            ["top_ops"] = ops,
        };
    }
}
