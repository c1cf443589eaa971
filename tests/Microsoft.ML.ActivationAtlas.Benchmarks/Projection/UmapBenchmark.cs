using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Microsoft.ML.ActivationAtlas.Projection;
using Microsoft.ML.ActivationAtlas.Projection.Quality;
using Microsoft.ML.ActivationAtlas.Projection.Umap;

namespace Microsoft.ML.ActivationAtlas.Benchmarks.Projection;

/// <summary>
/// <c>umap --dataset fashion-mnist|synthetic --n N [--dims D] [--compare] [--transform-n M] [--holdout]</c>: fit time,
/// kNN and SGD time, trustworthiness (k = 15, first 5,000 rows of a seeded permutation, exact in both spaces), 10-NN
/// classifier accuracy (3-fold) in the layout, transform time of M new rows (noisy copies of dataset rows; with
/// <c>--holdout</c> the fit leaves out the last M rows and transforms them, e.g. Fashion-MNIST's 10,000 test images
/// with <c>--n 70000</c>), the time of the transform's neighbour search (search-graph build and queries) and its
/// recall against exact neighbours on the first 1,000 transformed rows, peak memory.
/// <c>--compare</c> runs umap-learn (Debian python) on the same data in the same run, scored by the same code;
/// <c>--rounds R</c> repeats both fits R times, alternating, and reports each side's median and their ratio.
/// </summary>
internal sealed class UmapBenchmark : IBenchmark
{
    public string Name => "umap";

    public string Description => "UMAP fit/transform speed and quality; --dataset fashion-mnist|synthetic --n N [--dims D] [--compare [--rounds R]] [--holdout]";

    public int Run(string[] args)
    {
        var a = new BenchmarkArgs(args);
        string dataset = a.Get("dataset", "fashion-mnist");
        int n = a.Get("n", 70000);
        int seed = a.Get("seed", 42);
        int transformN = a.Get("transform-n", 10000);
        bool holdout = a.Has("holdout");
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
        var allData = data;
        if (holdout)
        {
            // Fit on the first n - M rows; the last M are the new rows to transform.
            transformN = Math.Clamp(transformN, 1, n / 2);
            n -= transformN;
            data = data.AsSpan(0, n * dims).ToArray();
            labels = labels.AsSpan(0, n).ToArray();
        }
        Console.Error.WriteLine($"umap: {dataset} {n} x {dims}{(holdout ? $" (+{transformN} held out)" : "")}, {Environment.ProcessorCount} cores");
        var cpu0 = Process.GetCurrentProcess().TotalProcessorTime;
        var clock = Stopwatch.StartNew();
        string lastStage = "";
        var progress = new SyncProgress(p =>
        {
            if (p.Stage != lastStage)
            {
                using var self = Process.GetCurrentProcess();
                Console.Error.WriteLine($"  {clock.Elapsed.TotalSeconds,7:0.0}s (cpu {(self.TotalProcessorTime - cpu0).TotalSeconds,6:0.0}s, peak so far {self.PeakWorkingSet64 / 1e9:0.00} GB) {p.Stage}");
                lastStage = p.Stage;
            }
        });
        var model = new UmapReducer(options).Fit(data, n, dims, progress);
        double seconds = clock.Elapsed.TotalSeconds;
        double cpuSeconds = (Process.GetCurrentProcess().TotalProcessorTime - cpu0).TotalSeconds;
        long peak = Process.GetCurrentProcess().PeakWorkingSet64;
        Console.Error.WriteLine($"  fit {seconds:0.0}s (knn {model.KnnSeconds:0.0}s, sgd {model.OptimizeSeconds:0.0}s), peak {peak / 1e9:0.00} GB");

        // Transform of new rows: the held-out rows, or noisy copies of the first rows.
        double transformSeconds = double.NaN, transformCpu = double.NaN, searchSeconds = double.NaN, searchRecall = double.NaN;
        if (transformN > 0)
        {
            int m = Math.Min(transformN, n);
            float[] fresh;
            if (holdout)
            {
                fresh = allData.AsSpan(n * dims, m * dims).ToArray();
            }
            else
            {
                fresh = new float[m * dims];
                var rng = new Random(seed + 1);
                for (int i = 0; i < fresh.Length; i++)
                {
                    float noisy = data[i] + 0.02f * (float)(rng.NextDouble() * 2 - 1);
                    // Pixels stay in their [0, 1] range; synthetic values are unbounded.
                    fresh[i] = dataset == "fashion-mnist" ? Math.Clamp(noisy, 0f, 1f) : noisy;
                }
            }
            var tcpu0 = Process.GetCurrentProcess().TotalProcessorTime;
            var tclock = Stopwatch.StartNew();
            lastStage = "";
            clock.Restart();
            double searchStart = double.NaN, searchEnd = double.NaN;
            var transformProgress = new SyncProgress(p =>
            {
                progress.Report(p);
                if (p.Stage == "index" && p.Fraction == 0 || p.Stage == "knn" && p.Fraction == 0 && double.IsNaN(searchStart))
                    searchStart = tclock.Elapsed.TotalSeconds;
                if (p.Stage == "knn" && p.Fraction == 1)
                    searchEnd = tclock.Elapsed.TotalSeconds;
            });
            model.Transform(fresh, m, transformProgress);
            transformSeconds = tclock.Elapsed.TotalSeconds;
            searchSeconds = searchEnd - searchStart;
            searchRecall = TransformSearchRecall(model, fresh, Math.Min(m, 1000));
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
            result["transform_held_out"] = holdout;
            result["transform_search_seconds"] = Math.Round(searchSeconds, 3);
            result["transform_knn_recall"] = Math.Round(searchRecall, 4);
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

            // More rounds, alternating the two sides: on a shared machine one side's run can be slowed by other work,
            // so the figures reported are each side's median and the ratio of the medians.
            int rounds = Math.Max(1, a.Get("rounds", 1));
            if (rounds > 1)
            {
                var ours = new List<double> { seconds };
                var theirs = new List<double> { refSeconds };
                for (int r = 1; r < rounds; r++)
                {
                    var sw = Stopwatch.StartNew();
                    new UmapReducer(options).Fit(data, n, dims);
                    ours.Add(sw.Elapsed.TotalSeconds);
                    theirs.Add(RunUmapLearn(data, n, dims, options).Seconds);
                    Console.Error.WriteLine($"  round {r + 1}: ours {ours[^1]:0.0}s, umap-learn {theirs[^1]:0.0}s");
                }
                static double Median(List<double> v) => v.Order().ElementAt(v.Count / 2) / 2 + v.Order().ElementAt((v.Count - 1) / 2) / 2;
                result["rounds"] = rounds;
                result["seconds_per_round"] = ours.Select(v => Math.Round(v, 2)).ToArray();
                result["umap_learn_seconds_per_round"] = theirs.Select(v => Math.Round(v, 2)).ToArray();
                result["seconds"] = Math.Round(Median(ours), 2);
                result["umap_learn_seconds"] = Math.Round(Median(theirs), 2);
                result["speedup"] = Math.Round(Median(theirs) / Median(ours), 2);
                result["speedup_per_round"] = ours.Zip(theirs, (o, t) => Math.Round(t / o, 2)).ToArray();
            }
        }
        Console.WriteLine(JsonSerializer.Serialize(result));
        return 0;
    }

    private static double s_lastUmapLearnCpu;

    /// <summary>
    /// Recall of the transform's neighbour search (the graph search over the training rows, as in
    /// <see cref="UmapModel.Transform"/>) against exact neighbours, on the first <paramref name="rows"/> new rows.
    /// </summary>
    internal static double TransformSearchRecall(UmapModel model, float[] fresh, int rows)
    {
        var o = model.Options;
        var prepared = new Microsoft.ML.ActivationAtlas.Projection.Internal.PreparedData(model.TrainingData, model.Rows, model.InputDimension, o.Metric);
        var queries = prepared.PrepareQueries(fresh.AsSpan(0, rows * model.InputDimension).ToArray(), rows, "queries");
        var exact = Microsoft.ML.ActivationAtlas.Projection.Knn.ExactKnn.Query(prepared, queries, rows, o.Neighbors, CancellationToken.None);
        if (UmapModel.UseExact(o.KnnAlgorithm, model.Rows))
            return 1.0;
        var search = new Microsoft.ML.ActivationAtlas.Projection.Knn.GraphSearch(prepared, model.Knn, o.Seed);
        return search.Query(queries, rows, o.Neighbors, CancellationToken.None).RecallAgainst(exact);
    }

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
