namespace Microsoft.ML.ActivationAtlas.Projection.Knn;

/// <summary>
/// The k nearest neighbours of every row: row-major <c>rows x k</c> index and distance buffers, each row sorted by
/// increasing distance. For a graph of a data set with itself, neighbour 0 of every row is the row itself.
/// </summary>
public sealed class KnnGraph
{
    /// <summary>Wraps existing buffers.</summary>
    /// <param name="indices">Row-major neighbour indices, <paramref name="rows"/> x <paramref name="k"/>.</param>
    /// <param name="distances">Row-major true distances, the same shape.</param>
    /// <param name="rows">Number of query rows.</param>
    /// <param name="k">Neighbours per row.</param>
    public KnnGraph(int[] indices, float[] distances, int rows, int k)
    {
        if (indices.Length != (long)rows * k || distances.Length != (long)rows * k)
            throw new ArgumentException($"kNN buffers must hold rows x k = {(long)rows * k} values.");
        Indices = indices;
        Distances = distances;
        Rows = rows;
        K = k;
    }

    /// <summary>Neighbour indices, row-major.</summary>
    public int[] Indices { get; }

    /// <summary>True distances (euclidean or cosine), row-major, increasing along each row.</summary>
    public float[] Distances { get; }

    /// <summary>Number of rows.</summary>
    public int Rows { get; }

    /// <summary>Neighbours per row.</summary>
    public int K { get; }

    /// <summary>Fraction of the neighbours of <paramref name="rowsToCheck"/> rows that also appear in <paramref name="reference"/>.</summary>
    /// <param name="reference">The exact graph.</param>
    /// <param name="rowsToCheck">Rows compared (the first ones), or all when null.</param>
    public double RecallAgainst(KnnGraph reference, int? rowsToCheck = null)
    {
        int rows = Math.Min(rowsToCheck ?? Rows, Math.Min(Rows, reference.Rows));
        int k = Math.Min(K, reference.K);
        long hits = 0;
        for (int i = 0; i < rows; i++)
        {
            var mine = Indices.AsSpan(i * K, k);
            var theirs = reference.Indices.AsSpan(i * reference.K, k);
            foreach (int j in mine)
            {
                if (theirs.Contains(j))
                    hits++;
            }
        }
        return rows == 0 ? 1.0 : (double)hits / ((long)rows * k);
    }
}
