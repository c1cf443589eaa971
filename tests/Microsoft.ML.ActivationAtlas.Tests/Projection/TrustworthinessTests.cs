using System.Globalization;
using Microsoft.ML.ActivationAtlas.Projection;
using Microsoft.ML.ActivationAtlas.Projection.Quality;
using Microsoft.ML.ActivationAtlas.Tests.Infrastructure;

namespace Microsoft.ML.ActivationAtlas.Tests.Projection;

/// <summary>
/// <see cref="EmbeddingQuality.Trustworthiness"/>, which every UMAP and t-SNE quality threshold rests on, against
/// scikit-learn's <c>sklearn.manifold.trustworthiness</c> and against a direct computation with a stable tie-break.
/// </summary>
public class TrustworthinessTests
{
    /// <summary>A seeded random projection of the rows to 2-D: a layout that keeps some neighbourhoods and loses others.</summary>
    private static float[] RandomProjection(float[] data, int rows, int dims, int seed)
    {
        var rng = new Random(seed);
        var w = Enumerable.Range(0, 2 * dims).Select(_ => ProjectionTestData.Gaussian(rng)).ToArray();
        var layout = new float[rows * 2];
        for (int i = 0; i < rows; i++)
            for (int d = 0; d < dims; d++)
            {
                layout[2 * i] += data[i * dims + d] * w[d];
                layout[2 * i + 1] += data[i * dims + d] * w[dims + d];
            }
        return layout;
    }

    [Fact]
    public void MatchesScikitLearnOnFashionMnist()
    {
        const int n = 1000, dims = 784;
        var (data, _) = ProjectionTestData.Fashion(n);
        var layout = RandomProjection(data, n, dims, seed: 3);
        string dir = Directory.CreateTempSubdirectory("atlas-trust-").FullName;
        try
        {
            Python.WriteFloats(Path.Combine(dir, "x.f32"), data);
            Python.WriteFloats(Path.Combine(dir, "y.f32"), layout);
            string output = Python.Run("""
                import sys, numpy as np
                from sklearn.manifold import trustworthiness
                d = sys.argv[1]
                x = np.fromfile(d + '/x.f32', np.float32).reshape(1000, 784).astype(np.float64)
                y = np.fromfile(d + '/y.f32', np.float32).reshape(1000, 2).astype(np.float64)
                for metric in ('euclidean', 'cosine'):
                    for k in (5, 15):
                        print(metric, k, repr(trustworthiness(x, y, n_neighbors=k, metric=metric)))
                """, dir);
            var lines = output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
            Assert.Equal(4, lines.Length);
            foreach (var line in lines)
            {
                var parts = line.Split(' ');
                var metric = parts[0] == "cosine" ? DistanceMetric.Cosine : DistanceMetric.Euclidean;
                int k = int.Parse(parts[1], CultureInfo.InvariantCulture);
                double sklearn = double.Parse(parts[2], CultureInfo.InvariantCulture);
                double ours = EmbeddingQuality.Trustworthiness(data, dims, layout, 2, k, metric);
                // One swapped pair of ranks (float32 against float64 distances) moves the value by about 1e-7.
                Assert.True(Math.Abs(ours - sklearn) < 2e-5, $"{metric}, k = {k}: ours {ours:0.000000}, scikit-learn {sklearn:0.000000}");
                Assert.InRange(sklearn, 0.55, 0.95);
            }
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    [Fact]
    public void BreaksTiesByRowIndex()
    {
        // Points of a 6x6x6 integer grid, laid out by dropping the third coordinate: ties everywhere, in the input
        // (equal integer distances) and in the layout (six rows on each layout point). Ties go to the lower row
        // index, as a stable sort of the distances gives them; the reference here sorts with LINQ's stable OrderBy.
        const int side = 6, n = side * side * side, k = 7;
        var data = new float[n * 3];
        var layout = new float[n * 2];
        for (int i = 0; i < n; i++)
        {
            // Rows in a scrambled order, so that index order and grid order differ.
            int g = (i * 97) % n;
            data[3 * i] = g % side;
            data[3 * i + 1] = g / side % side;
            data[3 * i + 2] = g / (side * side);
            layout[2 * i] = data[3 * i];
            layout[2 * i + 1] = data[3 * i + 2];
        }
        double reference = StableTrustworthiness(data, 3, layout, 2, k);
        double ours = EmbeddingQuality.Trustworthiness(data, 3, layout, 2, k);
        Assert.Equal(reference, ours, 12);
    }

    /// <summary>Trustworthiness by its definition, in double precision, ranks from a stable sort.</summary>
    private static double StableTrustworthiness(float[] x, int xd, float[] y, int yd, int k)
    {
        int n = x.Length / xd;
        double Dist(float[] a, int d, int i, int j) => Enumerable.Range(0, d).Sum(c => (double)(a[i * d + c] - a[j * d + c]) * (a[i * d + c] - a[j * d + c]));
        double penalty = 0;
        for (int i = 0; i < n; i++)
        {
            var others = Enumerable.Range(0, n).Where(j => j != i);
            var rank = new int[n];
            int r = 1;
            foreach (int j in others.OrderBy(j => Dist(x, xd, i, j)))
                rank[j] = r++;
            foreach (int j in others.OrderBy(j => Dist(y, yd, i, j)).Take(k))
                penalty += Math.Max(0, rank[j] - k);
        }
        return 1 - penalty * 2.0 / (n * k * (2.0 * n - 3.0 * k - 1.0));
    }
}
