using Microsoft.ML.ActivationAtlas.Common;
using Microsoft.ML.Data;

namespace Microsoft.ML.ActivationAtlas.Building;

/// <summary>Row-major float matrices as data-view columns and back.</summary>
internal static class Matrices
{
    /// <summary>A view with one float-vector column per matrix (all with the same number of rows).</summary>
    public static IDataView View(int rows, params (string Name, float[] Data, int Columns)[] columns)
    {
        var b = new InMemoryDataView.Builder(rows);
        foreach (var (name, data, cols) in columns)
        {
            if (data.Length != (long)rows * cols)
                throw new ArgumentException($"Matrix '{name}' holds {data.Length} values, not {rows} x {cols}.");
            var d = data;
            int c = cols;
            b.Add(name, new VectorDataViewType(NumberDataViewType.Single, cols),
                (int r, ref VBuffer<float> v) => InMemoryDataView.Fill(ref v, d.AsSpan(r * c, c)));
        }
        return b.Build();
    }

    /// <summary>Reads a float-vector column into a row-major matrix.</summary>
    public static float[] Read(IDataView data, string column, out int rows, out int columns, CancellationToken cancellationToken = default)
        => SchemaShapes.ReadFloatMatrix(data, SchemaShapes.FloatVector(data.Schema, column, "a matrix column"), out rows, out columns, cancellationToken);

    /// <summary>The rows <paramref name="rows"/> of a row-major matrix of <paramref name="columns"/> columns.</summary>
    public static float[] Gather(float[] matrix, int columns, IReadOnlyList<int> rows)
    {
        var result = new float[rows.Count * columns];
        for (int i = 0; i < rows.Count; i++)
            matrix.AsSpan(rows[i] * columns, columns).CopyTo(result.AsSpan(i * columns, columns));
        return result;
    }
}

/// <summary>A row of an image-path view: the input of a built atlas's pipeline.</summary>
internal sealed class ImagePathRow
{
    public string ImagePath { get; set; } = "";
}
