namespace Microsoft.ML.ActivationAtlas.Projection.Sparse;

/// <summary>A weighted sparse matrix in compressed sparse row form; columns are sorted within each row.</summary>
public sealed class CsrGraph
{
    /// <summary>Wraps CSR buffers.</summary>
    /// <param name="rows">Number of rows.</param>
    /// <param name="columns">Number of columns.</param>
    /// <param name="rowPointers">Start of each row in <paramref name="columnIndices"/>, length rows + 1.</param>
    /// <param name="columnIndices">Column of each stored value.</param>
    /// <param name="values">The stored values.</param>
    public CsrGraph(int rows, int columns, int[] rowPointers, int[] columnIndices, float[] values)
    {
        if (rowPointers.Length != rows + 1 || columnIndices.Length != values.Length || rowPointers[rows] != values.Length)
            throw new ArgumentException("Inconsistent CSR buffers.");
        Rows = rows;
        Columns = columns;
        RowPointers = rowPointers;
        ColumnIndices = columnIndices;
        Values = values;
    }

    /// <summary>Number of rows.</summary>
    public int Rows { get; }

    /// <summary>Number of columns.</summary>
    public int Columns { get; }

    /// <summary>Row start offsets (length <see cref="Rows"/> + 1).</summary>
    public int[] RowPointers { get; }

    /// <summary>Column indices.</summary>
    public int[] ColumnIndices { get; }

    /// <summary>Values.</summary>
    public float[] Values { get; }

    /// <summary>Number of stored values.</summary>
    public int NonZeros => Values.Length;

    /// <summary>The transpose (columns come out sorted).</summary>
    public CsrGraph Transpose()
    {
        var counts = new int[Columns + 1];
        foreach (int c in ColumnIndices)
            counts[c + 1]++;
        for (int c = 0; c < Columns; c++)
            counts[c + 1] += counts[c];
        var ptr = (int[])counts.Clone();
        var cols = new int[NonZeros];
        var vals = new float[NonZeros];
        var next = (int[])counts.Clone();
        for (int r = 0; r < Rows; r++)
        {
            for (int e = RowPointers[r]; e < RowPointers[r + 1]; e++)
            {
                int pos = next[ColumnIndices[e]]++;
                cols[pos] = r;
                vals[pos] = Values[e];
            }
        }
        return new CsrGraph(Columns, Rows, ptr, cols, vals);
    }

    /// <summary>A copy without the values below <paramref name="threshold"/> (and without zeros).</summary>
    public CsrGraph Prune(float threshold)
    {
        var ptr = new int[Rows + 1];
        int nnz = 0;
        for (int r = 0; r < Rows; r++)
        {
            for (int e = RowPointers[r]; e < RowPointers[r + 1]; e++)
            {
                if (Values[e] >= threshold && Values[e] > 0f)
                    nnz++;
            }
            ptr[r + 1] = nnz;
        }
        var cols = new int[nnz];
        var vals = new float[nnz];
        int o = 0;
        for (int r = 0; r < Rows; r++)
        {
            for (int e = RowPointers[r]; e < RowPointers[r + 1]; e++)
            {
                if (Values[e] >= threshold && Values[e] > 0f)
                {
                    cols[o] = ColumnIndices[e];
                    vals[o++] = Values[e];
                }
            }
        }
        return new CsrGraph(Rows, Columns, ptr, cols, vals);
    }

    /// <summary>Largest stored value (0 when empty).</summary>
    public float MaxValue() => NonZeros == 0 ? 0f : System.Numerics.Tensors.TensorPrimitives.Max<float>(Values);
}
