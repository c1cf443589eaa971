using Microsoft.ML.Data;

namespace Microsoft.ML.ActivationAtlas.Common;

/// <summary>Helpers for estimators' <c>GetOutputSchema(SchemaShape)</c> and for reading input columns.</summary>
internal static class SchemaShapes
{
    /// <summary>
    /// <paramref name="input"/> with <paramref name="added"/> columns appended (hiding same-named ones). ML.NET's
    /// <c>SchemaShape.Column</c> constructor is not public, so the shape is rebuilt from a schema.
    /// </summary>
    public static SchemaShape Append(SchemaShape input, params (string Name, DataViewType Type)[] added)
    {
        var builder = new DataViewSchema.Builder();
        foreach (var c in input)
        {
            DataViewType type = c.Kind switch
            {
                SchemaShape.Column.VectorKind.Scalar => c.ItemType,
                SchemaShape.Column.VectorKind.Vector when c.ItemType is PrimitiveDataViewType p => new VectorDataViewType(p, 1),
                SchemaShape.Column.VectorKind.VariableVector when c.ItemType is PrimitiveDataViewType p => new VectorDataViewType(p),
                _ => c.ItemType,
            };
            builder.AddColumn(c.Name, type);
        }
        foreach (var (name, type) in added)
            builder.AddColumn(name, type);
        return (SchemaShape)(s_create.Invoke(null, [builder.ToSchema()])
            ?? throw new InvalidOperationException("SchemaShape.Create returned null."));
    }

    /// <summary>The shape of a schema (ML.NET's <c>SchemaShape.Create</c>, which is not public).</summary>
    public static SchemaShape FromSchema(DataViewSchema schema) =>
        (SchemaShape)(s_create.Invoke(null, [schema]) ?? throw new InvalidOperationException("SchemaShape.Create returned null."));

    // ML.NET builds shapes from schemas with an internal factory; its Column constructor is not public either.
    private static readonly System.Reflection.MethodInfo s_create =
        typeof(SchemaShape).GetMethod("Create", System.Reflection.BindingFlags.Static | System.Reflection.BindingFlags.Public | System.Reflection.BindingFlags.NonPublic, [typeof(DataViewSchema)])
        ?? throw new MissingMethodException("Microsoft.ML.SchemaShape.Create(DataViewSchema) was not found in this version of ML.NET.");

    /// <summary>Checks that <paramref name="input"/> has a float vector column <paramref name="name"/>.</summary>
    public static void RequireFloatVector(SchemaShape input, string name, string what)
    {
        var found = input.Where(c => c.Name == name).ToArray();
        if (found.Length == 0)
            throw new ArgumentOutOfRangeException(nameof(input), $"The input has no column '{name}' ({what}).");
        var col = found[^1];
        if (col.Kind == SchemaShape.Column.VectorKind.Scalar || col.ItemType != NumberDataViewType.Single)
            throw new ArgumentOutOfRangeException(nameof(input), $"Column '{name}' ({what}) must be a vector of Single, not {col.ItemType}{(col.Kind == SchemaShape.Column.VectorKind.Scalar ? "" : " vector")}.");
    }

    /// <summary>Finds a column of a fixed-size float vector type (size <paramref name="size"/> when positive).</summary>
    public static DataViewSchema.Column FloatVector(DataViewSchema schema, string name, string what, int size = 0)
    {
        var col = schema.GetColumnOrNull(name)
            ?? throw new ArgumentOutOfRangeException(nameof(schema), $"The input has no column '{name}' ({what}). Columns: {string.Join(", ", schema.Where(c => !c.IsHidden).Select(c => c.Name))}.");
        if (col.Type is not VectorDataViewType { ItemType: var item } v || item != NumberDataViewType.Single)
            throw new ArgumentOutOfRangeException(nameof(schema), $"Column '{name}' ({what}) must be a vector of Single, not {col.Type}.");
        if (size > 0 && v.Size != size)
            throw new ArgumentOutOfRangeException(nameof(schema), $"Column '{name}' ({what}) must have {size} values per row, not {(v.Size == 0 ? "a variable number" : v.Size.ToString(System.Globalization.CultureInfo.InvariantCulture))}.");
        return col;
    }

    /// <summary>Reads a float vector column into one contiguous row-major buffer (rows x size); variable-size rows are an error.</summary>
    public static float[] ReadFloatMatrix(IDataView data, DataViewSchema.Column column, out int rows, out int size, CancellationToken cancellationToken = default)
    {
        size = ((VectorDataViewType)column.Type).Size;
        long? count = data.GetRowCount();
        var buffer = new List<float>(count is long c && size > 0 ? (int)Math.Min(c * size, int.MaxValue / 2) : 1024);
        rows = 0;
        VBuffer<float> row = default;
        using var cursor = data.GetRowCursor([column]);
        var getter = cursor.GetGetter<VBuffer<float>>(column);
        while (cursor.MoveNext())
        {
            if ((rows & 1023) == 0)
                cancellationToken.ThrowIfCancellationRequested();
            getter(ref row);
            if (size == 0)
                size = row.Length;
            if (row.Length != size)
                throw new InvalidOperationException($"Column '{column.Name}': row {rows} has {row.Length} values, expected {size}.");
            if (row.IsDense)
                buffer.AddRange(row.GetValues());
            else
            {
                var dense = new float[size];
                row.CopyTo(dense);
                buffer.AddRange(dense);
            }
            rows++;
        }
        return buffer.ToArray();
    }
}
