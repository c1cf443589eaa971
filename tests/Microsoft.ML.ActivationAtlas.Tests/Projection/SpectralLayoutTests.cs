using Microsoft.ML.ActivationAtlas.Projection;
using Microsoft.ML.ActivationAtlas.Projection.Internal;
using Microsoft.ML.ActivationAtlas.Projection.Knn;
using Microsoft.ML.ActivationAtlas.Projection.Umap;
using Xunit.Abstractions;

namespace Microsoft.ML.ActivationAtlas.Tests.Projection;

public class SpectralLayoutTests(ITestOutputHelper output)
{
    private const int Clusters = 12, PerCluster = 60, Dims = 20, Rows = Clusters * PerCluster;

    /// <summary>
    /// Twelve tight Gaussian clusters in 20-D whose centres sit on a 3 x 4 grid (spacing 1.5) in a random 2-D plane,
    /// with the grid cells dealt to the clusters in a random order (so a cluster's index says nothing about where it
    /// is), rows interleaved (row i belongs to cluster i % 12). Returns the data, labels and the grid cell of each cluster.
    /// </summary>
    private static (float[] Data, int[] Labels, (int X, int Y)[] Cells) GridClusters(int seed)
    {
        var rng = new Random(seed);
        var plane = new double[2 * Dims];
        for (int i = 0; i < plane.Length; i++)
            plane[i] = ProjectionTestData.Gaussian(rng);
        // Gram-Schmidt: two orthonormal directions.
        Normalize(plane.AsSpan(0, Dims));
        double dot = 0;
        for (int d = 0; d < Dims; d++)
            dot += plane[d] * plane[Dims + d];
        for (int d = 0; d < Dims; d++)
            plane[Dims + d] -= dot * plane[d];
        Normalize(plane.AsSpan(Dims, Dims));

        var order = Enumerable.Range(0, Clusters).OrderBy(_ => rng.Next()).ToArray();
        var cells = new (int X, int Y)[Clusters];
        var centres = new double[Clusters * Dims];
        for (int c = 0; c < Clusters; c++)
        {
            cells[c] = (order[c] % 4, order[c] / 4);
            for (int d = 0; d < Dims; d++)
                centres[c * Dims + d] = 1.5 * (cells[c].X * plane[d] + cells[c].Y * plane[Dims + d]) + 0.03 * ProjectionTestData.Gaussian(rng);
        }
        var data = new float[Rows * Dims];
        var labels = new int[Rows];
        for (int i = 0; i < Rows; i++)
        {
            int c = i % Clusters;
            labels[i] = c;
            for (int d = 0; d < Dims; d++)
                data[i * Dims + d] = (float)(centres[c * Dims + d] + 0.04 * ProjectionTestData.Gaussian(rng));
        }
        return (data, labels, cells);

        static void Normalize(Span<double> v)
        {
            double n = Math.Sqrt(System.Numerics.Tensors.TensorPrimitives.Dot<double>(v, v));
            for (int i = 0; i < v.Length; i++)
                v[i] /= n;
        }
    }

    private static float[] InitialLayout(float[] data, DistanceMetric metric, int seed, out int components, out int[] componentLabels)
    {
        var options = new UmapOptions { Metric = metric, Seed = seed };
        var prepared = new PreparedData(data, Rows, Dims, metric);
        var knn = ExactKnn.Build(prepared, options.Neighbors, CancellationToken.None);
        var graph = UmapReducer.BuildGraph(knn, options);
        graph = graph.Prune(graph.MaxValue() / 500);
        (components, componentLabels) = SpectralLayout.ConnectedComponents(graph);
        return SpectralLayout.Compute(graph, prepared, 2, seed, CancellationToken.None);
    }

    [Fact]
    public void ManyComponents_AreCompactSeparatedAndPlacedByCentroidGeometry()
    {
        var (data, labels, cells) = GridClusters(seed: 3);
        var layout = InitialLayout(data, DistanceMetric.Euclidean, seed: 7, out int components, out var componentLabels);

        // The kNN graph falls apart into exactly the twelve clusters (more than 2 * dim, so the centroid embedding is used).
        Assert.Equal(Clusters, components);
        for (int i = 0; i < Rows; i++)
            Assert.Equal(componentLabels[labels[i]], componentLabels[i]);
        Assert.All(layout, v => Assert.True(float.IsFinite(v)));

        var centre = new double[Clusters * 2];
        for (int i = 0; i < Rows; i++)
        {
            centre[labels[i] * 2] += layout[i * 2] / (double)PerCluster;
            centre[labels[i] * 2 + 1] += layout[i * 2 + 1] / (double)PerCluster;
        }
        double CentreDistance(int a, int b) => Math.Sqrt(Math.Pow(centre[a * 2] - centre[b * 2], 2) + Math.Pow(centre[a * 2 + 1] - centre[b * 2 + 1], 2));

        // Compact and separated: every cluster's radius is well under half the distance to the nearest other cluster.
        for (int c = 0; c < Clusters; c++)
        {
            double radius = 0;
            for (int i = c; i < Rows; i += Clusters)
                radius = Math.Max(radius, Math.Sqrt(Math.Pow(layout[i * 2] - centre[c * 2], 2) + Math.Pow(layout[i * 2 + 1] - centre[c * 2 + 1], 2)));
            double nearest = Enumerable.Range(0, Clusters).Where(o => o != c).Min(o => CentreDistance(c, o));
            output.WriteLine($"cluster {c} cell {cells[c]}: radius {radius:0.0000}, nearest other centre {nearest:0.0000}");
            Assert.True(radius < 0.75 * nearest, $"cluster {c}: radius {radius:0.0000} vs nearest other centre {nearest:0.0000}");
        }

        // The centroid embedding keeps the grid: clusters adjacent on the grid (input distance 1.5) end up nearer each
        // other than clusters two or more steps apart, on average, and the layout's centre distances rank like the
        // input's (Spearman correlation).
        var input = new List<double>();
        var placed = new List<double>();
        double near = 0, far = 0;
        int nearCount = 0, farCount = 0;
        for (int a = 0; a < Clusters; a++)
        {
            for (int b = a + 1; b < Clusters; b++)
            {
                double grid = Math.Sqrt(Math.Pow(cells[a].X - cells[b].X, 2) + Math.Pow(cells[a].Y - cells[b].Y, 2));
                input.Add(grid);
                placed.Add(CentreDistance(a, b));
                if (grid <= 1.0)
                {
                    near += CentreDistance(a, b);
                    nearCount++;
                }
                else if (grid >= 2.0)
                {
                    far += CentreDistance(a, b);
                    farCount++;
                }
            }
        }
        near /= nearCount;
        far /= farCount;
        double rho = Spearman(input, placed);
        output.WriteLine($"mean layout distance: grid neighbours {near:0.0000}, two or more steps apart {far:0.0000}; Spearman {rho:0.000}");
        Assert.True(far > 1.5 * near, $"grid neighbours {near:0.0000} vs far pairs {far:0.0000}");
        Assert.True(rho > 0.6, $"Spearman correlation of centre distances {rho:0.000}");

        // Deterministic per seed.
        Assert.Equal(layout, InitialLayout(data, DistanceMetric.Euclidean, seed: 7, out _, out _));

        // The optimised layout keeps the arrangement (disconnected components only repel each other).
        var fitted = new UmapReducer(new UmapOptions { Seed = 7, Deterministic = true }).Fit(data, Rows, Dims).Embedding;
        var fittedCentre = new double[Clusters * 2];
        for (int i = 0; i < Rows; i++)
        {
            fittedCentre[labels[i] * 2] += fitted[i * 2] / (double)PerCluster;
            fittedCentre[labels[i] * 2 + 1] += fitted[i * 2 + 1] / (double)PerCluster;
        }
        var fittedDistances = new List<double>();
        for (int a = 0; a < Clusters; a++)
        {
            for (int b = a + 1; b < Clusters; b++)
                fittedDistances.Add(Math.Sqrt(Math.Pow(fittedCentre[a * 2] - fittedCentre[b * 2], 2) + Math.Pow(fittedCentre[a * 2 + 1] - fittedCentre[b * 2 + 1], 2)));
        }
        double fittedRho = Spearman(input, fittedDistances);
        double fittedAccuracy = Microsoft.ML.ActivationAtlas.Projection.Quality.EmbeddingQuality.KnnAccuracy(fitted, 2, labels.Select(l => (byte)l).ToArray());
        output.WriteLine($"after the fit: Spearman {fittedRho:0.000}, 10-NN accuracy {fittedAccuracy:0.000}");
        // (The circle-by-index placement this replaced gave 0.10 before and 0.05 after the fit.)
        Assert.True(fittedRho > 0.5, $"Spearman correlation of centre distances after the fit {fittedRho:0.000}");
        Assert.True(fittedAccuracy >= 0.99, $"10-NN accuracy after the fit {fittedAccuracy:0.000}");
    }

    [Fact]
    public void ManyComponents_CosineUsesNormalisedCentroids()
    {
        // Offsetting the grid away from the origin makes it a pattern of directions, which cosine sees.
        var (data, labels, _) = GridClusters(seed: 5);
        for (int i = 0; i < Rows; i++)
            data[i * Dims] += 6f;
        var layout = InitialLayout(data, DistanceMetric.Cosine, seed: 2, out int components, out _);
        Assert.True(components > 4, $"only {components} components");
        Assert.All(layout, v => Assert.True(float.IsFinite(v)));
        var bytes = labels.Select(l => (byte)l).ToArray();
        Assert.True(Microsoft.ML.ActivationAtlas.Projection.Quality.EmbeddingQuality.KnnAccuracy(layout, 2, bytes) >= 0.99);
    }

    [Theory]
    [InlineData(DistanceMetric.Euclidean, new[] { 0.9222, 0.7740, 0.4161, 0.9727, -0.4006, 1.0000, -0.9001, 0.8259, 0.9798, -0.0063, 0.4416, -0.0166, -0.4327, -0.0056, -0.9748, 0.0099, 0.9098, -0.7666, 0.3941, -0.9621, -0.4247, -0.9694, -0.9164, -0.7864 })]
    [InlineData(DistanceMetric.Cosine, new[] { 0.4425, 1.0000, -0.1043, 0.5867, -0.4570, 0.4062, -0.8336, 0.2236, 0.6506, 0.2104, 0.1305, 0.0575, -0.1580, -0.0790, -0.5016, -0.2545, 0.9202, -0.4489, 0.2942, -0.4525, -0.0329, -0.5400, -0.3340, -0.6988 })]
    public void MetaLayout_MatchesUmapLearnsComponentLayout(DistanceMetric metric, double[] expected)
    {
        // Twelve centroids in 20-D: a 3 x 4 grid in two fixed directions plus a small wobble (first coordinate + 6 for
        // cosine). Expected: umap-learn 0.5.3's component_layout(C, 12, arange(12), 2, RandomState(0), metric) with
        // scikit-learn 1.2.1 (Debian), signs included (both flip each vector so its largest entry is positive).
        const int count = 12, dims = 20;
        var c = new double[count * dims];
        for (int i = 0; i < count; i++)
        {
            for (int d = 0; d < dims; d++)
            {
                c[i * dims + d] = 1.5 * ((i % 4) * Math.Cos(0.7 * d + 0.3) + (i / 4) * Math.Sin(1.3 * d + 0.1)) / Math.Sqrt(20) * 2
                    + 0.05 * Math.Sin(7.1 * i + 3.3 * d);
            }
            if (metric == DistanceMetric.Cosine)
                c[i * dims] += 6;
        }
        var meta = ComponentLayout.SpectralMetaLayout(ComponentLayout.SquaredDistances(c, count, dims, metric, CancellationToken.None), count, 2, 1, CancellationToken.None);
        Assert.NotNull(meta);
        for (int t = 0; t < expected.Length; t++)
            Assert.True(Math.Abs(expected[t] - meta![t]) < 1e-3, $"entry {t}: {meta[t]:0.0000}, umap-learn {expected[t]:0.0000}");
    }

    [Fact]
    public void FewComponents_SitOnTheUnitAxes()
    {
        Assert.Equal(new double[] { 1, 0, 0, 1, -1, 0, 0, -1 }, ComponentLayout.AxisLayout(4, 2));
        Assert.Equal(new double[] { 1, 0, 0, 1, -1, 0 }, ComponentLayout.AxisLayout(3, 2));
    }

    [Fact]
    public void MetaLayout_SurvivesCentroidsTooFarApartForExpOfMinusDSquared()
    {
        // Distances of 40 and more: exp(-d^2) underflows to zero for every pair, which umap-learn turns into a division
        // by zero; the squared distances are scaled down instead, keeping their order.
        const int count = 7;
        var squared = new double[count * count];
        for (int i = 0; i < count; i++)
        {
            for (int j = 0; j < count; j++)
                squared[i * count + j] = Math.Pow(40.0 * Math.Abs(i - j), 2);
        }
        var meta = ComponentLayout.SpectralMetaLayout(squared, count, 2, 1, CancellationToken.None);
        Assert.NotNull(meta);
        Assert.All(meta!, v => Assert.True(double.IsFinite(v)));
        // Points on a line stay ordered along the first axis.
        var first = Enumerable.Range(0, count).Select(i => meta![i * 2]).ToArray();
        bool increasing = first.Zip(first.Skip(1)).All(p => p.First < p.Second);
        bool decreasing = first.Zip(first.Skip(1)).All(p => p.First > p.Second);
        Assert.True(increasing || decreasing, string.Join(", ", first.Select(v => v.ToString("0.000"))));
    }

    [Fact]
    public void VeryManyComponents_FallBackToPrincipalComponentsOfTheCentroids()
    {
        // The path for more than MaxSpectralComponents components, on the grid clusters' centroids.
        var (data, labels, cells) = GridClusters(seed: 3);
        var prepared = new PreparedData(data, Rows, Dims, DistanceMetric.Euclidean);
        var centroids = ComponentLayout.Centroids(prepared, labels, Clusters);
        var meta = ComponentLayout.PrincipalLayout(centroids, Clusters, Dims, DistanceMetric.Euclidean, 2, 1, CancellationToken.None);
        Assert.Equal(1.0, meta.Max(Math.Abs), 6);
        var grid = new List<double>();
        var placed = new List<double>();
        for (int a = 0; a < Clusters; a++)
        {
            for (int b = a + 1; b < Clusters; b++)
            {
                grid.Add(Math.Sqrt(Math.Pow(cells[a].X - cells[b].X, 2) + Math.Pow(cells[a].Y - cells[b].Y, 2)));
                placed.Add(Math.Sqrt(Math.Pow(meta[a * 2] - meta[b * 2], 2) + Math.Pow(meta[a * 2 + 1] - meta[b * 2 + 1], 2)));
            }
        }
        // The centroids lie in a plane, so their first two principal components reproduce the grid up to rotation.
        Assert.True(Spearman(grid, placed) > 0.95);
    }

    private static double Spearman(List<double> x, List<double> y)
    {
        double[] Ranks(List<double> v)
        {
            var order = Enumerable.Range(0, v.Count).OrderBy(i => v[i]).ToArray();
            var r = new double[v.Count];
            for (int i = 0; i < order.Length;)
            {
                int j = i;
                while (j + 1 < order.Length && v[order[j + 1]] == v[order[i]])
                    j++;
                for (int t = i; t <= j; t++)
                    r[order[t]] = (i + j) / 2.0;
                i = j + 1;
            }
            return r;
        }
        var rx = Ranks(x);
        var ry = Ranks(y);
        double mx = rx.Average(), my = ry.Average(), sxy = 0, sxx = 0, syy = 0;
        for (int i = 0; i < rx.Length; i++)
        {
            sxy += (rx[i] - mx) * (ry[i] - my);
            sxx += (rx[i] - mx) * (rx[i] - mx);
            syy += (ry[i] - my) * (ry[i] - my);
        }
        return sxy / Math.Sqrt(sxx * syy);
    }
}
