using Microsoft.ML.ActivationAtlas.Projection.Knn;
using Microsoft.ML.ActivationAtlas.Projection.Sparse;

namespace Microsoft.ML.ActivationAtlas.Projection.Umap;

/// <summary>
/// UMAP's fuzzy simplicial set (umap-learn 0.5 <c>smooth_knn_dist</c>, <c>compute_membership_strengths</c> and the
/// fuzzy union), stored as CSR.
/// </summary>
internal static class FuzzySimplicialSet
{
    private const double SmoothKTolerance = 1e-5;
    private const double MinKDistScale = 1e-3;
    private const int BisectionSteps = 64;

    /// <summary>
    /// Per-row <c>rho</c> (distance to the <c>localConnectivity</c>-th non-zero neighbour, interpolated) and
    /// <c>sigma</c> (found by 64-step bisection so that <c>sum exp(-(d - rho) / sigma) = log2(k) * bandwidth</c>,
    /// neighbour 0 excluded).
    /// </summary>
    public static (float[] Sigmas, float[] Rhos) SmoothKnnDistances(KnnGraph knn, double k, double localConnectivity, double bandwidth = 1.0)
    {
        int n = knn.Rows, kk = knn.K;
        var dists = knn.Distances;
        double target = Math.Log2(k) * bandwidth;
        double meanAll = 0;
        for (int t = 0; t < dists.Length; t++)
            meanAll += dists[t];
        meanAll /= dists.Length;
        var sigmas = new float[n];
        var rhos = new float[n];
        Parallel.For(0, n, i =>
        {
            var row = dists.AsSpan(i * kk, kk);
            double rho = 0;
            int nonZero = 0;
            foreach (float d in row)
            {
                if (d > 0f)
                    nonZero++;
            }
            if (nonZero >= localConnectivity)
            {
                int index = (int)Math.Floor(localConnectivity);
                double interpolation = localConnectivity - index;
                if (index > 0)
                {
                    rho = NthNonZero(row, index - 1);
                    if (interpolation > SmoothKTolerance)
                        rho += interpolation * (NthNonZero(row, index) - NthNonZero(row, index - 1));
                }
                else
                {
                    rho = interpolation * NthNonZero(row, 0);
                }
            }
            else if (nonZero > 0)
            {
                float max = 0f;
                foreach (float d in row)
                    max = Math.Max(max, d);
                rho = max;
            }

            double lo = 0, hi = double.PositiveInfinity, mid = 1.0;
            for (int step = 0; step < BisectionSteps; step++)
            {
                double psum = 0;
                for (int j = 1; j < kk; j++)
                {
                    double d = row[j] - rho;
                    psum += d > 0 ? Math.Exp(-(d / mid)) : 1.0;
                }
                if (Math.Abs(psum - target) < SmoothKTolerance)
                    break;
                if (psum > target)
                {
                    hi = mid;
                    mid = (lo + hi) / 2.0;
                }
                else
                {
                    lo = mid;
                    mid = double.IsPositiveInfinity(hi) ? mid * 2 : (lo + hi) / 2.0;
                }
            }
            if (rho > 0)
            {
                double meanRow = 0;
                foreach (float d in row)
                    meanRow += d;
                meanRow /= kk;
                mid = Math.Max(mid, MinKDistScale * meanRow);
            }
            else
            {
                mid = Math.Max(mid, MinKDistScale * meanAll);
            }
            sigmas[i] = (float)mid;
            rhos[i] = (float)rho;
        });
        return (sigmas, rhos);
    }

    private static float NthNonZero(ReadOnlySpan<float> row, int nth)
    {
        foreach (float d in row)
        {
            if (d > 0f && nth-- == 0)
                return d;
        }
        return 0f;
    }

    /// <summary>
    /// Membership strengths <c>exp(-(d - rho) / sigma)</c> (1 within rho) as a CSR matrix of rows x columns, sorted by
    /// column. When <paramref name="bipartite"/> is false (a graph of the data with itself) the self edge gets 0 and
    /// is dropped.
    /// </summary>
    public static CsrGraph MembershipStrengths(KnnGraph knn, float[] sigmas, float[] rhos, int columns, bool bipartite)
    {
        int n = knn.Rows, k = knn.K;
        var ptr = new int[n + 1];
        var cols = new int[n * k];
        var vals = new float[n * k];
        var counts = new int[n];
        Parallel.For(0, n, i =>
        {
            int o = i * k, c = 0;
            for (int j = 0; j < k; j++)
            {
                int col = knn.Indices[i * k + j];
                if (col < 0)
                    continue;
                float d = knn.Distances[i * k + j];
                float v;
                if (!bipartite && col == i)
                    v = 0f;
                else if (d - rhos[i] <= 0f || sigmas[i] == 0f)
                    v = 1f;
                else
                    v = (float)Math.Exp(-((d - rhos[i]) / (double)sigmas[i]));
                if (v <= 0f)
                    continue;
                // insertion by column keeps the row sorted
                int p = c++;
                while (p > 0 && cols[o + p - 1] > col)
                {
                    cols[o + p] = cols[o + p - 1];
                    vals[o + p] = vals[o + p - 1];
                    p--;
                }
                cols[o + p] = col;
                vals[o + p] = v;
            }
            counts[i] = c;
        });
        for (int i = 0; i < n; i++)
            ptr[i + 1] = ptr[i] + counts[i];
        var outCols = new int[ptr[n]];
        var outVals = new float[ptr[n]];
        for (int i = 0; i < n; i++)
        {
            Array.Copy(cols, i * k, outCols, ptr[i], counts[i]);
            Array.Copy(vals, i * k, outVals, ptr[i], counts[i]);
        }
        return new CsrGraph(n, columns, ptr, outCols, outVals);
    }

    /// <summary>
    /// The fuzzy union <c>mix * (A + A' - A o A') + (1 - mix) * (A o A')</c> of a square membership matrix with its
    /// transpose.
    /// </summary>
    public static CsrGraph Union(CsrGraph a, double setOpMixRatio)
    {
        var t = a.Transpose();
        int n = a.Rows;
        var ptr = new int[n + 1];
        for (int i = 0; i < n; i++)
            ptr[i + 1] = ptr[i] + MergeCount(a, t, i);
        var cols = new int[ptr[n]];
        var vals = new float[ptr[n]];
        Parallel.For(0, n, i =>
        {
            int ea = a.RowPointers[i], eaEnd = a.RowPointers[i + 1];
            int eb = t.RowPointers[i], ebEnd = t.RowPointers[i + 1];
            int o = ptr[i];
            while (ea < eaEnd || eb < ebEnd)
            {
                int ca = ea < eaEnd ? a.ColumnIndices[ea] : int.MaxValue;
                int cb = eb < ebEnd ? t.ColumnIndices[eb] : int.MaxValue;
                double va = 0, vb = 0;
                int c;
                if (ca == cb) { c = ca; va = a.Values[ea++]; vb = t.Values[eb++]; }
                else if (ca < cb) { c = ca; va = a.Values[ea++]; }
                else { c = cb; vb = t.Values[eb++]; }
                double prod = va * vb;
                cols[o] = c;
                vals[o++] = (float)(setOpMixRatio * (va + vb - prod) + (1.0 - setOpMixRatio) * prod);
            }
        });
        return new CsrGraph(n, n, ptr, cols, vals).Prune(float.Epsilon);
    }

    private static int MergeCount(CsrGraph a, CsrGraph t, int i)
    {
        int ea = a.RowPointers[i], eaEnd = a.RowPointers[i + 1];
        int eb = t.RowPointers[i], ebEnd = t.RowPointers[i + 1];
        int count = 0;
        while (ea < eaEnd || eb < ebEnd)
        {
            int ca = ea < eaEnd ? a.ColumnIndices[ea] : int.MaxValue;
            int cb = eb < ebEnd ? t.ColumnIndices[eb] : int.MaxValue;
            if (ca == cb) { ea++; eb++; }
            else if (ca < cb) ea++;
            else eb++;
            count++;
        }
        return count;
    }
}
