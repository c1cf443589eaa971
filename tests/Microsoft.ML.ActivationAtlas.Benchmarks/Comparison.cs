using System.Diagnostics;
using System.Text.Json.Nodes;
using Microsoft.ML.ActivationAtlas.Onnx;
using Microsoft.ML.ActivationAtlas.Onnx.Protobuf;
using Microsoft.ML.OnnxRuntime;

namespace Microsoft.ML.ActivationAtlas.Benchmarks;

/// <summary>
/// What the timed comparisons with PyTorch share: one thread count for both sides, alternating rounds with medians, the
/// machine's matrix-multiply peak as ONNX Runtime reaches it, and achieved GFLOP/s.
/// </summary>
internal static class Comparison
{
    /// <summary>
    /// The settings both sides share: <c>--threads</c> (default: the machine's cores; below the core count the process,
    /// and so the PyTorch worker it starts, which inherits it, is pinned to that many cores, so that the work outside the
    /// network, .NET's thread pool and PyTorch's inter-op pool, cannot use more) and <c>--spin</c> (idle worker threads
    /// spin: ONNX Runtime's allow_spinning and OMP_WAIT_POLICY=ACTIVE; default both passive, the library's default,
    /// since spinning threads of one side slow the other and anything else on a shared machine).
    /// </summary>
    public static Settings Read(BenchmarkArgs a)
    {
        int threads = a.Get("threads", Environment.ProcessorCount);
        if (threads < 1)
            throw new ArgumentException($"--threads {threads}: must be at least 1.");
        if (threads < Environment.ProcessorCount && OperatingSystem.IsLinux())
        {
            try
            {
                Process.GetCurrentProcess().ProcessorAffinity = (nint)((1L << threads) - 1);
            }
            catch (Exception e) when (e is System.ComponentModel.Win32Exception or InvalidOperationException)
            {
                Console.Error.WriteLine($"could not pin the process to {threads} cores ({e.Message}); thread counts are set, cores are not pinned");
            }
        }
        return new Settings(threads, a.Has("spin"));
    }

    /// <summary>Thread count and wait policy of both sides.</summary>
    /// <param name="Threads">ONNX Runtime's intra-op threads and torch.set_num_threads.</param>
    /// <param name="Spin">Whether idle worker threads spin (ONNX Runtime allow_spinning, OMP_WAIT_POLICY=ACTIVE).</param>
    internal sealed record Settings(int Threads, bool Spin)
    {
        /// <summary>ONNX Runtime session options for our side.</summary>
        public OnnxSessionOptions Session() => new() { IntraOpThreads = Threads, AllowSpinning = Spin };

        /// <summary>The OpenMP wait policy of PyTorch's side.</summary>
        public string WaitPolicy => Spin ? "ACTIVE" : "PASSIVE";

        /// <summary>Adds the settings to a result line.</summary>
        public void Describe(Dictionary<string, object?> line)
        {
            line["threads"] = Threads;
            line["cores"] = Environment.ProcessorCount;
            line["spin"] = Spin;
        }
    }

    /// <summary>
    /// <paramref name="rounds"/> rounds alternating ours, theirs, ours, ... (each side already warmed up); each function
    /// returns its round's measurement. Returns every round of both sides.
    /// </summary>
    public static (List<double> Ours, List<double> Theirs) Alternate(int rounds, string unit, Func<double> ours, Func<double>? theirs)
    {
        var a = new List<double>();
        var b = new List<double>();
        for (int r = 0; r < rounds; r++)
        {
            a.Add(ours());
            if (theirs is not null)
                b.Add(theirs());
            Console.Error.WriteLine($"  round {r + 1}/{rounds}: ours {a[^1]:F1} {unit}" + (theirs is null ? "" : $", PyTorch {b[^1]:F1} {unit}"));
        }
        return (a, b);
    }

    /// <summary>The median (the mean of the middle two for an even count).</summary>
    public static double Median(IEnumerable<double> values)
    {
        var v = values.Order().ToArray();
        return v.Length == 0 ? double.NaN : v.Length % 2 == 1 ? v[v.Length / 2] : (v[v.Length / 2 - 1] + v[v.Length / 2]) / 2;
    }

    /// <summary>GFLOP/s of <paramref name="flops"/> done in <paramref name="milliseconds"/>.</summary>
    public static double Gflops(double flops, double milliseconds) => Math.Round(flops / (milliseconds * 1e-3) / 1e9, 1);

    /// <summary>Best GFLOP/s of an n x n x n float32 MatMul in ONNX Runtime with the shared settings.</summary>
    public static double OnnxRuntimeMatMulPeak(Settings settings, int n = 2048, int repeats = 3)
    {
        var model = new ModelProto { IrVersion = 8, Graph = new GraphProto { Name = "matmul" } };
        model.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = 13 });
        model.Graph.Input.Add(OnnxValueInfo.Float("a", (long)n, (long)n));
        model.Graph.Input.Add(OnnxValueInfo.Float("b", (long)n, (long)n));
        model.Graph.Output.Add(OnnxValueInfo.Float("c", (long)n, (long)n));
        var node = new NodeProto { OpType = "MatMul", Name = "matmul" };
        node.Input.Add("a");
        node.Input.Add("b");
        node.Output.Add("c");
        model.Graph.Node.Add(node);
        using var session = OnnxSessionFactory.Create(model, settings.Session());
        var rng = new Random(0);
        var a = new float[n * n];
        var b = new float[n * n];
        for (int i = 0; i < a.Length; i++)
        {
            a[i] = (float)rng.NextDouble();
            b[i] = (float)rng.NextDouble();
        }
        using var av = OrtValue.CreateTensorValueFromMemory(a, [n, n]);
        using var bv = OrtValue.CreateTensorValueFromMemory(b, [n, n]);
        var c = new float[n * n];
        using var cv = OrtValue.CreateTensorValueFromMemory(c, [n, n]);
        using var ro = new RunOptions();
        double best = double.MaxValue;
        for (int r = 0; r <= repeats; r++)
        {
            var sw = Stopwatch.StartNew();
            session.Run(ro, ["a", "b"], [av, bv], ["c"], [cv]);
            if (r > 0)
                best = Math.Min(best, sw.Elapsed.TotalMilliseconds);
        }
        return Gflops(2.0 * n * n * n, best);
    }

    /// <summary>
    /// Adds the network part's FLOPs, both sides' achieved GFLOP/s, the matrix-multiply peaks (ours from ONNX Runtime,
    /// the worker's from torch.mm and numpy.dot) with each side's fraction of the highest, the worker's agreement check,
    /// versions and <c>torch.__config__.show()</c> to a result line. Prefix names the part (e.g. <c>network_</c>).
    /// </summary>
    public static void AddThroughput(Dictionary<string, object?> line, JsonObject torchInfo, double flopsPerRun, double oursMs, double torchMs,
        double onnxRuntimePeak, string prefix = "")
    {
        var peaks = new Dictionary<string, double> { ["onnxruntime_matmul"] = onnxRuntimePeak };
        foreach (var (name, value) in torchInfo["matmul_peak_gflops"]!.AsObject())
            peaks[name] = value!.GetValue<double>();
        double peak = peaks.Values.Max(), ours = Gflops(flopsPerRun, oursMs), torch = Gflops(flopsPerRun, torchMs);
        line[prefix + "gflop_per_run"] = Math.Round(flopsPerRun / 1e9, 3);
        line[prefix + "ours_gflops"] = ours;
        line[prefix + "torch_gflops"] = torch;
        line[prefix + "ours_fraction_of_peak"] = Math.Round(ours / peak, 3);
        line[prefix + "torch_fraction_of_peak"] = Math.Round(torch / peak, 3);
        line["flop_count"] = FlopCount;
        line["matmul_peak_gflops"] = peaks;
        line["torch_check"] = torchInfo["check"]!.DeepClone();
        line["torch"] = torchInfo["torch"]!.GetValue<string>();
        line["torchvision"] = torchInfo["torchvision"]!.GetValue<string>();
        line["torch_threads"] = torchInfo["threads"]!.GetValue<int>();
        line["torch_cores"] = torchInfo["cores"]!.DeepClone();
        line["torch_omp_wait_policy"] = torchInfo["omp_wait_policy"]!.GetValue<string>();
        line["torch_blas_libraries"] = torchInfo["blas_libraries"]!.DeepClone();
        line["torch_config"] = torchInfo["config"]!.GetValue<string>();
        if (peaks.TryGetValue("torch_mm", out double mm) && mm < 0.25 * onnxRuntimePeak)
        {
            string warning = $"torch.mm reaches {mm} GFLOP/s against ONNX Runtime's MatMul {onnxRuntimePeak}: PyTorch's matrix products (Linear, attention) "
                + $"run on a slow BLAS ({string.Join(", ", torchInfo["blas_libraries"]!.AsArray())}); on Debian, apt-get install libopenblas0-pthread makes OpenBLAS the system BLAS";
            line["warning"] = warning;
            Console.Error.WriteLine("warning: " + warning);
        }
    }

    /// <summary>How the network's FLOPs are counted (the PyTorch worker counts them on torchvision's modules).</summary>
    public const string FlopCount = "multiply-adds x 2 of Conv2d, Linear and attention products; the backward pass is the input gradient only "
        + "(the weights are constants on both sides): as many FLOPs as the forward for convolutions and linear layers, twice for products of two activations";

    /// <summary>Writes floats to a raw little-endian float32 file.</summary>
    public static void WriteFloats(string path, ReadOnlySpan<float> values) =>
        File.WriteAllBytes(path, System.Runtime.InteropServices.MemoryMarshal.AsBytes(values).ToArray());

    /// <summary>Comma-separated dimensions, as the Python scripts take shapes.</summary>
    public static string Shape(params long[] dims) => string.Join(",", dims);
}
