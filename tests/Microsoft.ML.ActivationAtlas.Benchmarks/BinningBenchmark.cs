using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Microsoft.ML.ActivationAtlas.Binning;

namespace Microsoft.ML.ActivationAtlas.Benchmarks;

/// <summary>
/// Grid binning and aggregation: N synthetic 2-D points (a mixture of Gaussian blobs) with D-dimensional activations
/// into nested grids. Times the percentile fit, the O(N) binning pass, per-level counts and the full aggregation
/// (means, top classes, examples).
/// </summary>
internal sealed class BinningBenchmark : IBenchmark
{
    public string Name => "binning";

    public string Description => "bin N 2-D points with D-d activations into nested grids (--n 1000000 --dim 512 --classes 10 --sizes 20,40,80,160 --seed 1)";

    public int Run(string[] args)
    {
        var a = new BenchmarkArgs(args);
        int n = a.Get("n", 1_000_000), dim = a.Get("dim", 512), classes = a.Get("classes", 10), seed = a.Get("seed", 1);
        var sizes = a.Get("sizes", "20,40,80,160").Split(',').Select(s => int.Parse(s, CultureInfo.InvariantCulture)).ToArray();
        var levels = new GridLevels(sizes);

        var sw = Stopwatch.StartNew();
        var rng = new Random(seed);
        var xy = new float[2 * n];
        var act = new float[(long)n * dim];
        var attr = new float[(long)n * classes];
        var centres = Enumerable.Range(0, 16).Select(_ => (X: rng.NextSingle() * 20, Y: rng.NextSingle() * 20)).ToArray();
        int blocks = Environment.ProcessorCount * 4;
        Parallel.For(0, blocks, b =>
        {
            var r = new Random(seed * 7919 + b);
            long from = (long)n * b / blocks, to = (long)n * (b + 1) / blocks;
            for (long i = from; i < to; i++)
            {
                var c = centres[r.Next(centres.Length)];
                xy[2 * i] = c.X + Gauss(r);
                xy[2 * i + 1] = c.Y + Gauss(r);
                for (int d = 0; d < dim; d++)
                    act[i * dim + d] = r.NextSingle();
                attr[i * classes + r.Next(classes)] = 1f;
            }
        });
        double generate = sw.Elapsed.TotalSeconds;
        Console.WriteLine($"generated {n:N0} points x {dim} in {generate:F2} s");

        sw.Restart();
        var norm = GridNormalization.Fit(xy, 1, 99, 0.1f);
        double fit = sw.Elapsed.TotalSeconds;

        sw.Restart();
        var codes = GridBinner.FinestCodes(xy, norm, levels);
        double bin = sw.Elapsed.TotalSeconds;

        sw.Restart();
        var counts = GridBinner.Counts(codes, levels);
        double count = sw.Elapsed.TotalSeconds;

        sw.Restart();
        var atlas = GridAggregator.Aggregate(codes, act, dim, attr, classes, levels, new GridAggregator.Settings(1, 5, 4, null));
        double aggregate = sw.Elapsed.TotalSeconds;

        for (int l = 0; l < levels.Count; l++)
            Console.WriteLine($"grid {sizes[l]}: {atlas.Levels[l].Cells.Count} non-empty cells, total {counts[l].Sum()}");
        Console.WriteLine(JsonSerializer.Serialize(new
        {
            benchmark = Name,
            n,
            dim,
            sizes,
            threads = Environment.ProcessorCount,
            fit_s = Math.Round(fit, 3),
            bin_s = Math.Round(bin, 3),
            counts_s = Math.Round(count, 3),
            aggregate_s = Math.Round(aggregate, 3),
            total_s = Math.Round(fit + bin + count + aggregate, 3),
        }));
        return 0;
    }

    private static float Gauss(Random r) => (float)(Math.Sqrt(-2 * Math.Log(1 - r.NextDouble())) * Math.Cos(2 * Math.PI * r.NextDouble()));
}
