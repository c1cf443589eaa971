using Microsoft.ML.ActivationAtlas.Projection.Knn;
using Microsoft.ML.ActivationAtlas.Projection.Sparse;

namespace Microsoft.ML.ActivationAtlas.Projection.Tsne;

/// <summary>t-SNE input affinities: per-row Gaussian bandwidth calibrated to the perplexity, symmetrised and normalised.</summary>
internal static class Affinities
{
    /// <summary>
    /// Conditional P by 100-step bisection on the precision (tolerance 1e-5 on the entropy, natural log), on squared
    /// euclidean or plain cosine distances, then <c>P = (P + P') / sum</c> (scikit-learn's <c>_joint_probabilities_nn</c>).
    /// </summary>
    public static CsrGraph Compute(KnnGraph knn, double perplexity, bool squareDistances)
    {
        int n = knn.Rows, k = knn.K;
        var ptr = new int[n + 1];
        for (int i = 0; i < n; i++)
            ptr[i + 1] = ptr[i] + (k - 1);
        var cols = new int[n * (k - 1)];
        var vals = new float[n * (k - 1)];
        double target = Math.Log(perplexity);
        Parallel.For(0, n, () => new double[k], (i, _, d) =>
        {
            int o = i * (k - 1);
            int c = 0;
            for (int j = 0; j < k; j++)
            {
                int col = knn.Indices[i * k + j];
                if (col == i || c == k - 1)
                    continue;
                double dist = knn.Distances[i * k + j];
                d[c] = squareDistances ? dist * dist : dist;
                cols[o + c] = col;
                c++;
            }
            double beta = 1, lo = double.NegativeInfinity, hi = double.PositiveInfinity;
            double sum = 0;
            for (int step = 0; step < 100; step++)
            {
                sum = 0;
                double weighted = 0;
                for (int t = 0; t < c; t++)
                {
                    double p = Math.Exp(-d[t] * beta);
                    sum += p;
                    weighted += d[t] * p;
                }
                if (sum == 0)
                    sum = 1e-8;
                double entropy = Math.Log(sum) + beta * weighted / sum;
                double diff = entropy - target;
                if (Math.Abs(diff) <= 1e-5)
                    break;
                if (diff > 0)
                {
                    lo = beta;
                    beta = double.IsPositiveInfinity(hi) ? beta * 2 : (beta + hi) / 2;
                }
                else
                {
                    hi = beta;
                    beta = double.IsNegativeInfinity(lo) ? beta / 2 : (beta + lo) / 2;
                }
            }
            for (int t = 0; t < c; t++)
                vals[o + t] = (float)(Math.Exp(-d[t] * beta) / sum);
            return d;
        }, _ => { });
        // Sort each row by column for the union.
        Parallel.For(0, n, i => Array.Sort(cols, vals, ptr[i], ptr[i + 1] - ptr[i]));
        var conditional = new CsrGraph(n, n, ptr, cols, vals);
        var t2 = conditional.Transpose();
        var sptr = new int[n + 1];
        var scols = new List<int>(cols.Length * 2);
        var svals = new List<float>(cols.Length * 2);
        double total = 0;
        for (int i = 0; i < n; i++)
        {
            int a = conditional.RowPointers[i], ae = conditional.RowPointers[i + 1];
            int b = t2.RowPointers[i], be = t2.RowPointers[i + 1];
            while (a < ae || b < be)
            {
                int ca = a < ae ? conditional.ColumnIndices[a] : int.MaxValue;
                int cb = b < be ? t2.ColumnIndices[b] : int.MaxValue;
                float v;
                int col;
                if (ca == cb) { col = ca; v = conditional.Values[a++] + t2.Values[b++]; }
                else if (ca < cb) { col = ca; v = conditional.Values[a++]; }
                else { col = cb; v = t2.Values[b++]; }
                scols.Add(col);
                svals.Add(v);
                total += v;
            }
            sptr[i + 1] = scols.Count;
        }
        var values = svals.ToArray();
        float inv = (float)(1.0 / Math.Max(total, double.Epsilon));
        System.Numerics.Tensors.TensorPrimitives.Multiply(values, inv, values);
        return new CsrGraph(n, n, sptr, scols.ToArray(), values);
    }
}
