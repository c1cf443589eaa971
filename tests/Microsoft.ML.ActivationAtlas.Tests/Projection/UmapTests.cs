using Microsoft.ML.ActivationAtlas.Projection;
using Microsoft.ML.ActivationAtlas.Projection.Quality;
using Microsoft.ML.ActivationAtlas.Projection.Umap;
using Microsoft.ML.ActivationAtlas.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Microsoft.ML.ActivationAtlas.Tests.Projection;

public class UmapTests(ITestOutputHelper output)
{
    [Fact]
    public void WellSeparatedClusters_AreTrustworthyAndSeparated()
    {
        var (data, labels) = ProjectionTestData.Blobs(1000, 50, 5, seed: 1);
        var model = new UmapReducer(new UmapOptions { Seed = 1 }).Fit(data, 1000, 50);
        double trust = EmbeddingQuality.Trustworthiness(data, 50, model.Embedding, 2, 15);
        double acc = EmbeddingQuality.KnnAccuracy(model.Embedding, 2, labels);
        Assert.True(trust >= 0.95, $"trustworthiness {trust:0.0000}");
        Assert.True(acc >= 0.99, $"10-NN accuracy {acc:0.0000}");
        Assert.All(model.Embedding, v => Assert.True(float.IsFinite(v)));
    }

    [Fact]
    public void FashionMnist_QualityNearUmapLearn()
    {
        // umap-learn 0.5.3 (Debian) on these 2,500 images with n_epochs=200: trustworthiness(15) 0.976,
        // 10-NN accuracy 0.754 (3-fold).
        var (data, labels) = ProjectionTestData.Fashion(2500);
        var model = new UmapReducer(new UmapOptions { Epochs = 200 }).Fit(data, 2500, 784);
        double trust = EmbeddingQuality.Trustworthiness(data, 784, model.Embedding, 2, 15);
        double acc = EmbeddingQuality.KnnAccuracy(model.Embedding, 2, labels);
        Assert.True(trust >= 0.97, $"trustworthiness {trust:0.0000}");
        Assert.True(acc >= 0.72, $"10-NN accuracy {acc:0.0000}");
        Assert.Equal(1.5769f, model.A, 3);
        Assert.Equal(0.8951f, model.B, 3);
    }

    [Fact]
    public void Transform_PlacesNewRowsNearTheirNeighboursAsUmapLearnDoes()
    {
        var (data, labels) = ProjectionTestData.Fashion(2000);
        var model = new UmapReducer(new UmapOptions { Epochs = 200 }).Fit(data, 2000, 784);
        const int m = 300;
        var placed = model.Transform(data.AsSpan(0, m * 784).ToArray(), m);
        double extent = ProjectionTestData.Extent(model.Embedding, 2);
        double mean = ProjectionTestData.MeanRowDistance(placed, model.Embedding, 2, m);
        Assert.True(mean < 0.05 * extent, $"mean displacement {mean:0.000} vs layout extent {extent:0.000}");

        // New rows (not in the fit) land next to the layout positions of their exact nearest training rows...
        const int f = 500;
        var (fresh, freshLabels) = ProjectionTestData.Fashion(f, skip: 2000);
        var freshLayout = model.Transform(fresh, f);
        Assert.All(freshLayout, v => Assert.True(float.IsFinite(v)));
        var (near, random) = ProjectionTestData.PlacementSpread(data, fresh, 784, model.Embedding, freshLayout, 2);
        output.WriteLine($"ours: median distance to the exact neighbours' positions {near:0.000}, between random positions {random:0.000}");
        Assert.True(near < 0.1 * random, $"new rows sit {near:0.000} from their exact neighbours' positions; random positions are {random:0.000} apart");
        // ... and among training rows of their class.
        int agree = 0;
        for (int i = 0; i < f; i++)
        {
            var nearest = Enumerable.Range(0, 2000)
                .OrderBy(j => Math.Pow(model.Embedding[2 * j] - freshLayout[2 * i], 2) + Math.Pow(model.Embedding[2 * j + 1] - freshLayout[2 * i + 1], 2))
                .Take(10).GroupBy(j => labels[j]).OrderByDescending(g => g.Count()).First().Key;
            agree += nearest == freshLabels[i] ? 1 : 0;
        }
        Assert.True(agree >= 0.7 * f, $"only {agree} of {f} new rows landed among their class");

        // umap-learn's transform of the same rows onto the same layout (its fit on the same rows and settings, its
        // embedding_ replaced by ours) puts each row close to where ours does.
        string dir = Directory.CreateTempSubdirectory("atlas-umap-learn-").FullName;
        try
        {
            Python.WriteFloats(Path.Combine(dir, "train.f32"), data);
            Python.WriteFloats(Path.Combine(dir, "fresh.f32"), fresh);
            Python.WriteFloats(Path.Combine(dir, "embedding.f32"), model.Embedding);
            Python.Run("""
                import sys, numpy as np, umap
                d = sys.argv[1]
                train = np.fromfile(d + '/train.f32', np.float32).reshape(2000, 784)
                fresh = np.fromfile(d + '/fresh.f32', np.float32).reshape(500, 784)
                reducer = umap.UMAP(n_neighbors=15, min_dist=0.1, n_epochs=200, random_state=1).fit(train)
                reducer.embedding_ = np.fromfile(d + '/embedding.f32', np.float32).reshape(2000, 2)
                reducer.transform(fresh).astype(np.float32).tofile(d + '/placed.f32')
                """, dir);
            var theirs = Python.ReadFloats(Path.Combine(dir, "placed.f32"));
            var (theirNear, _) = ProjectionTestData.PlacementSpread(data, fresh, 784, model.Embedding, theirs, 2);
            var apart = Enumerable.Range(0, f).Select(i => Math.Sqrt(Math.Pow(freshLayout[2 * i] - theirs[2 * i], 2) + Math.Pow(freshLayout[2 * i + 1] - theirs[2 * i + 1], 2))).ToArray();
            double medianApart = ProjectionTestData.Median(apart);
            output.WriteLine($"umap-learn: median distance to the exact neighbours' positions {theirNear:0.000}; ours and theirs apart: median {medianApart:0.000}");
            Assert.True(near <= 1.25 * theirNear + 0.01 * random, $"ours {near:0.000} from the exact neighbours' positions, umap-learn {theirNear:0.000}");
            Assert.True(medianApart < 0.1 * random, $"ours and umap-learn's placements are a median {medianApart:0.000} apart (random positions {random:0.000})");
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    [Fact]
    public void Transform_UsesNNDescentSearchForLargeTrainingSets()
    {
        var (data, _) = ProjectionTestData.Fashion(4000);
        var model = new UmapReducer(new UmapOptions { Epochs = 30, KnnAlgorithm = KnnAlgorithm.NNDescent }).Fit(data, 4000, 784);
        const int m = 200;
        var placed = model.Transform(data.AsSpan(0, m * 784).ToArray(), m);
        double extent = ProjectionTestData.Extent(model.Embedding, 2);
        Assert.True(ProjectionTestData.MeanRowDistance(placed, model.Embedding, 2, m) < 0.05 * extent);
    }

    [Fact]
    public void DeterministicMode_IsBitIdenticalPerSeed()
    {
        var (data, _) = ProjectionTestData.Fashion(800);
        var options = new UmapOptions { Deterministic = true, Seed = 5, Epochs = 100 };
        var a = new UmapReducer(options).Fit(data, 800, 784);
        var b = new UmapReducer(options).Fit(data, 800, 784);
        Assert.Equal(a.Embedding, b.Embedding);
        var c = new UmapReducer(options with { Seed = 6 }).Fit(data, 800, 784);
        Assert.NotEqual(a.Embedding, c.Embedding);
        var ta = a.Transform(data.AsSpan(0, 50 * 784).ToArray(), 50);
        var tb = b.Transform(data.AsSpan(0, 50 * 784).ToArray(), 50);
        Assert.Equal(ta, tb);
    }

    [Fact]
    public void ReportsProgressAndHonoursCancellation()
    {
        var (data, _) = ProjectionTestData.Fashion(500);
        var stages = new List<string>();
        var progress = new InlineProgress(p => { lock (stages) stages.Add(p.Stage); });
        new UmapReducer(new UmapOptions { Epochs = 20 }).Fit(data, 500, 784, progress);
        Assert.Contains("knn", stages);
        Assert.Contains("init", stages);
        Assert.Contains("optimize", stages);

        using var cts = new CancellationTokenSource();
        var cancelling = new InlineProgress(p => { if (p.Stage == "optimize") cts.Cancel(); });
        Assert.ThrowsAny<OperationCanceledException>(() => new UmapReducer(new UmapOptions { Epochs = 200 }).Fit(data, 500, 784, cancelling, cts.Token));
    }

    [Fact]
    public void AtlasSettings_AreDocumentedPresets()
    {
        Assert.Equal((20, 0.01f, DistanceMetric.Cosine), (UmapOptions.ForAtlas.Neighbors, UmapOptions.ForAtlas.MinDist, UmapOptions.ForAtlas.Metric));
        Assert.Equal((50, 0.05f, DistanceMetric.Cosine), (UmapOptions.ForSmoothAtlas.Neighbors, UmapOptions.ForSmoothAtlas.MinDist, UmapOptions.ForSmoothAtlas.Metric));
        var (data, labels) = ProjectionTestData.Fashion(1500);
        var model = new UmapReducer(UmapOptions.ForAtlas with { Epochs = 150 }).Fit(data, 1500, 784);
        Assert.True(EmbeddingQuality.KnnAccuracy(model.Embedding, 2, labels) >= 0.68);
    }
}

/// <summary>Reports synchronously on the calling thread.</summary>
internal sealed class InlineProgress(Action<ProjectionProgress> report) : IProgress<ProjectionProgress>
{
    public void Report(ProjectionProgress value) => report(value);
}
