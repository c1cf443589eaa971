using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Microsoft.ML.ActivationAtlas.Projection;
using Microsoft.ML.ActivationAtlas.Projection.Quality;
using Microsoft.ML.ActivationAtlas.Projection.Umap;

namespace Microsoft.ML.ActivationAtlas.Benchmarks.Projection;

/// <summary>
/// <c>umap --dataset fashion-mnist|synthetic --n N [--dims D] [--compare] [--transform-n M]</c>: fit time, kNN and SGD
/// time, trustworthiness (k = 15, first 5,000 rows of a seeded permutation, exact in both spaces), 10-NN classifier
/// accuracy (3-fold) in the layout, transform time of M new rows (noisy copies of dataset rows), peak memory.
/// <c>--compare</c> runs umap-learn (Debian python) on the same data in the same run, scored by the same code.
/// </summary>
internal sealed class UmapBenchmark : IBenchmark
{
    public string Name => "umap";

    public string Description => "UMAP fit/transform speed and quality; --dataset fashion-mnist|synthetic --n N [--dims D] [--compare]";

    public int Run(string[] args)
    {
        var a = new BenchmarkArgs(args);
        string dataset = a.Get("dataset", "fashion-mnist");
        int n = a.Get("n", 70000);
        int seed = a.Get("seed", 42);
        int transformN = a.Get("transform-n", 10000);
        var (data, labels, dims) = dataset switch
        {
            "fashion-mnist" => ProjectionData.FashionMnist(n),
            "synthetic" => ProjectionData.Synthetic(n, a.Get("dims", 512), a.Get("clusters", 20), seed),
            _ => throw new ArgumentException($"--dataset {dataset}: use fashion-mnist or synthetic."),
        };
        var options = new UmapOptions
        {
            Neighbors = a.Get("neighbors", 15),
            MinDist = (float)a.Get("min-dist", 0.1),
            Metric = a.Get("metric", "euclidean") == "cosine" ? DistanceMetric.Cosine : DistanceMetric.Euclidean,
            Seed = seed,
            Deterministic = a.Has("deterministic"),
        };
        Console.Error.WriteLine($"umap: {dataset} {n} x {dims}, {Environment.ProcessorCount} cores");
        var cpu0 = Process.GetCurrentProcess().TotalProcessorTime;
        var clock = Stopwatch.StartNew();
        string lastStage = "";
        var progress = new SyncProgress(p =>
        {
            if (p.Stage != lastStage)
            {
                Console.Error.WriteLine($"  {clock.Elapsed.TotalSeconds,7:0.0}s (cpu {(Process.GetCurrentProcess().TotalProcessorTime - cpu0).TotalSeconds,6:0.0}s) {p.Stage}");
                lastStage = p.Stage;
            }
        });
        var model = new UmapReducer(options).Fit(data, n, dims, progress);
        double seconds = clock.Elapsed.TotalSeconds;
        double cpuSeconds = (Process.GetCurrentProcess().TotalProcessorTime - cpu0).TotalSeconds;
        long peak = Process.GetCurrentProcess().PeakWorkingSet64;
        Console.Error.WriteLine($"  fit {seconds:0.0}s (knn {model.KnnSeconds:0.0}s, sgd {model.OptimizeSeconds:0.0}s), peak {peak / 1e9:0.00} GB");

        // Transform of new rows: noisy copies of the first rows.
        double transformSeconds = double.NaN, transformCpu = double.NaN;
        if (transformN > 0)
        {
            int m = Math.Min(transformN, n);
            var fresh = new float[m * dims];
            var rng = new Random(seed + 1);
            for (int i = 0; i < fresh.Length; i++)
                fresh[i] = Math.Clamp(data[i] + 0.02f * (float)(rng.NextDouble() * 2 - 1), 0f, 1f);
            var tcpu0 = Process.GetCurrentProcess().TotalProcessorTime;
            var tclock = Stopwatch.StartNew();
            lastStage = "";
            clock.Restart();
            model.Transform(fresh, m, progress);
            transformSeconds = tclock.Elapsed.TotalSeconds;
            transformCpu = (Process.GetCurrentProcess().TotalProcessorTime - tcpu0).TotalSeconds;
            Console.Error.WriteLine($"  transform {m} rows {transformSeconds:0.00}s");
        }

        var result = new Dictionary<string, object>
        {
            ["benchmark"] = "umap",
            ["dataset"] = dataset,
            ["n"] = n,
            ["dims"] = dims,
            ["seconds"] = Math.Round(seconds, 2),
            ["cpu_seconds"] = Math.Round(cpuSeconds, 2),
            ["knn_seconds"] = Math.Round(model.KnnSeconds, 2),
            ["sgd_seconds"] = Math.Round(model.OptimizeSeconds, 2),
            ["peak_memory_gb"] = Math.Round(peak / 1e9, 2),
            ["input_gb"] = Math.Round(data.Length * 4.0 / 1e9, 2),
        };
        if (transformN > 0)
        {
            result["transform_seconds"] = Math.Round(transformSeconds, 2);
            result["transform_cpu_seconds"] = Math.Round(transformCpu, 2);
            result["transform_rows"] = Math.Min(transformN, n);
        }
        var (trust, acc) = Score(data, dims, labels, model.Embedding, seed);
        result["trustworthiness"] = Math.Round(trust, 4);
        result["knn_accuracy"] = Math.Round(acc, 4);

        if (a.Has("compare"))
        {
            var (refSeconds, refEmbedding) = RunUmapLearn(data, n, dims, options);
            var (refTrust, refAcc) = Score(data, dims, labels, refEmbedding, seed);
            result["umap_learn_seconds"] = Math.Round(refSeconds, 2);
            result["umap_learn_cpu_seconds"] = Math.Round(s_lastUmapLearnCpu, 2);
            result["umap_learn_trustworthiness"] = Math.Round(refTrust, 4);
            result["umap_learn_knn_accuracy"] = Math.Round(refAcc, 4);
            result["speedup"] = Math.Round(refSeconds / seconds, 2);
        }
        Console.WriteLine(JsonSerializer.Serialize(result));
        return 0;
    }

    private static double s_lastUmapLearnCpu;

    internal static (double Trust, double Acc) Score(float[] data, int dims, byte[] labels, float[] embedding, int seed)
    {
        int n = labels.Length, outDims = embedding.Length / n;
        var sub = ProjectionData.Subsample(n, 5000, 0);
        double trust = EmbeddingQuality.Trustworthiness(ProjectionData.Rows(data, dims, sub), dims, ProjectionData.Rows(embedding, outDims, sub), outDims, 15);
        // The 10-NN classifier is exact brute force: above 100,000 rows it runs on a seeded 100,000-row subsample.
        double acc = n <= 100000
            ? EmbeddingQuality.KnnAccuracy(embedding, outDims, labels, 10, 3, 0)
            : EmbeddingQuality.KnnAccuracy(ProjectionData.Rows(embedding, outDims, ProjectionData.Subsample(n, 100000, 1)), outDims,
                ProjectionData.Subsample(n, 100000, 1).Select(i => labels[i]).ToArray(), 10, 3, 0);
        return (trust, acc);
    }

    private static (double Seconds, float[] Embedding) RunUmapLearn(float[] data, int n, int dims, UmapOptions o)
    {
        string dir = Directory.CreateTempSubdirectory("umap-compare").FullName;
        try
        {
            string input = Path.Combine(dir, "x.f32"), output = Path.Combine(dir, "y.f32"), script = Path.Combine(dir, "run.py");
            using (var f = File.Create(input))
                f.Write(System.Runtime.InteropServices.MemoryMarshal.AsBytes(data.AsSpan()));
            File.WriteAllText(script, string.Create(CultureInfo.InvariantCulture, $$"""
                import sys, time, numpy as np, umap
                x = np.fromfile(sys.argv[1], dtype=np.float32).reshape({{n}}, {{dims}})
                kw = dict(n_neighbors={{o.Neighbors}}, min_dist={{o.MinDist}}, metric="{{(o.Metric == DistanceMetric.Cosine ? "cosine" : "euclidean")}}")
                umap.UMAP(**kw).fit(x[:3000])  # warm-up: numba compilation
                t = time.time(); c = time.process_time()
                y = umap.UMAP(**kw).fit_transform(x)
                print("seconds", time.time() - t, flush=True)
                print("cpu", time.process_time() - c, flush=True)
                y.astype(np.float32).tofile(sys.argv[2])
                """));
            var psi = new ProcessStartInfo("/usr/bin/python3", [script, input, output]) { RedirectStandardOutput = true };
            using var p = Process.Start(psi)!;
            string stdout = p.StandardOutput.ReadToEnd();
            p.WaitForExit();
            if (p.ExitCode != 0)
                throw new InvalidOperationException($"umap-learn exited with {p.ExitCode}: {stdout}");
            double Field(string name) => double.Parse(stdout.Split('\n').First(l => l.StartsWith(name + " ", StringComparison.Ordinal)).Split(' ')[1], CultureInfo.InvariantCulture);
            double seconds = Field("seconds");
            s_lastUmapLearnCpu = Field("cpu");
            var bytes = File.ReadAllBytes(output);
            Console.Error.WriteLine($"  umap-learn fit {seconds:0.0}s");
            return (seconds, System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(bytes).ToArray());
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }
}

/// <summary>An <see cref="IProgress{T}"/> that reports on the calling thread (no synchronisation context).</summary>
internal sealed class SyncProgress(Action<ProjectionProgress> report) : IProgress<ProjectionProgress>
{
    private readonly object _gate = new();

    public void Report(ProjectionProgress value)
    {
        lock (_gate)
            report(value);
    }
}
