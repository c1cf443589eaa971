using System.Diagnostics;
using System.Text.Json;
using Microsoft.ML.ActivationAtlas.Projection;
using Microsoft.ML.ActivationAtlas.Projection.Quality;
using Microsoft.ML.ActivationAtlas.Projection.Tsne;

namespace Microsoft.ML.ActivationAtlas.Benchmarks.Projection;

/// <summary>
/// <c>tsne [--n 10000] [--components 2] [--iterations 1000] [--theta 0.5] [--metric euclidean|cosine]</c>: Barnes-Hut
/// t-SNE of the first n Fashion-MNIST images: seconds, trustworthiness (k = 15, first 5,000 rows of a seeded
/// permutation) and 10-NN accuracy (3-fold) in the layout.
/// </summary>
internal sealed class TsneBenchmark : IBenchmark
{
    public string Name => "tsne";

    public string Description => "Barnes-Hut t-SNE of n Fashion-MNIST images: seconds and trustworthiness; --n 10000 [--components 1|2]";

    public int Run(string[] args)
    {
        var a = new BenchmarkArgs(args);
        int n = a.Get("n", 10000);
        var (data, labels, dims) = ProjectionData.FashionMnist(n);
        var options = new TsneOptions
        {
            Components = a.Get("components", 2),
            Iterations = a.Get("iterations", 1000),
            Theta = (float)a.Get("theta", 0.5),
            Perplexity = (float)a.Get("perplexity", 30.0),
            Metric = a.Get("metric", "euclidean") == "cosine" ? DistanceMetric.Cosine : DistanceMetric.Euclidean,
            Initialization = a.Get("init", "pca") == "random" ? TsneInitialization.Random : TsneInitialization.Pca,
        };
        Console.Error.WriteLine($"tsne: fashion-mnist {n} x {dims}, {options.Components}-D, {Environment.ProcessorCount} cores");
        var cpu0 = Process.GetCurrentProcess().TotalProcessorTime;
        var clock = Stopwatch.StartNew();
        var model = new TsneReducer(options).Fit(data, n, dims);
        double seconds = clock.Elapsed.TotalSeconds;
        double cpu = (Process.GetCurrentProcess().TotalProcessorTime - cpu0).TotalSeconds;
        var sub = ProjectionData.Subsample(n, Math.Min(5000, n), 0);
        int outDims = options.Components;
        double trust = EmbeddingQuality.Trustworthiness(ProjectionData.Rows(data, dims, sub), dims, ProjectionData.Rows(model.Embedding, outDims, sub), outDims, 15);
        double acc = EmbeddingQuality.KnnAccuracy(model.Embedding, outDims, labels, 10, 3, 0);
        Console.WriteLine(JsonSerializer.Serialize(new Dictionary<string, object>
        {
            ["benchmark"] = "tsne",
            ["n"] = n,
            ["dims"] = dims,
            ["components"] = outDims,
            ["seconds"] = Math.Round(seconds, 2),
            ["cpu_seconds"] = Math.Round(cpu, 2),
            ["trustworthiness"] = Math.Round(trust, 4),
            ["knn_accuracy"] = Math.Round(acc, 4),
        }));
        return 0;
    }
}
