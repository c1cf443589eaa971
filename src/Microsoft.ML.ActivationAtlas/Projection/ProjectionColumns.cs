using Microsoft.ML.Data;

namespace Microsoft.ML.ActivationAtlas.Projection;

/// <summary>Reading the input vector column of a projection stage and describing its output column.</summary>
internal static class ProjectionColumns
{
    /// <summary>Checks that <paramref name="column"/> exists and holds float vectors; returns its fixed size (0 when variable).</summary>
    public static int CheckInput(DataViewSchema schema, string column, string stage)
    {
        var col = schema.GetColumnOrNull(column)
            ?? throw new ArgumentOutOfRangeException(nameof(column), $"{stage}: input column '{column}' was not found in the data (columns: {string.Join(", ", schema.Where(c => !c.IsHidden).Select(c => c.Name))}).");
        if (col.Type is not VectorDataViewType vt || vt.ItemType != NumberDataViewType.Single)
            throw new ArgumentOutOfRangeException(nameof(column), $"{stage}: input column '{column}' must be a vector of Single (float), but it is {col.Type}.");
        return vt.Size;
    }

    /// <summary>Checks a schema shape (for <c>GetOutputSchema</c>).</summary>
    public static void CheckInput(SchemaShape shape, string column, string stage)
    {
        var col = shape.LastOrDefault(c => c.Name == column);
        if (col.Name is null)
            throw new ArgumentOutOfRangeException(nameof(column), $"{stage}: input column '{column}' was not found in the data.");
        if (col.Kind == SchemaShape.Column.VectorKind.Scalar || col.ItemType != NumberDataViewType.Single)
            throw new ArgumentOutOfRangeException(nameof(column), $"{stage}: input column '{column}' must be a vector of Single (float), but it is {col.ItemType} ({col.Kind}).");
    }

    /// <summary>Reads the column into one row-major buffer; every row must have the same length.</summary>
    public static (float[] Data, int Rows, int Dims) Read(IDataView data, string column, string stage, int expectedDims, CancellationToken ct)
    {
        int fixedSize = CheckInput(data.Schema, column, stage);
        var col = data.Schema[column];
        int dims = fixedSize > 0 ? fixedSize : -1;
        if (expectedDims > 0 && dims > 0 && dims != expectedDims)
            throw new ArgumentException($"{stage}: input column '{column}' has vectors of size {dims}, but the model was fitted on size {expectedDims}.");
        var buffer = new float[1 << 16];
        long used = 0;
        int rows = 0;
        using var cursor = data.GetRowCursor([col]);
        var getter = cursor.GetGetter<VBuffer<float>>(col);
        VBuffer<float> value = default;
        while (cursor.MoveNext())
        {
            if ((rows & 1023) == 0)
                ct.ThrowIfCancellationRequested();
            getter(ref value);
            if (dims < 0)
                dims = value.Length;
            if (value.Length != dims || (expectedDims > 0 && value.Length != expectedDims))
                throw new ArgumentException($"{stage}: row {rows} of column '{column}' has {value.Length} values, but {(expectedDims > 0 ? expectedDims : dims)} were expected (every row must have the same size{(expectedDims > 0 ? " as the rows the model was fitted on" : "")}).");
            if (used + dims > buffer.Length)
            {
                long size = Math.Max(buffer.Length * 2L, used + dims);
                if (size > Array.MaxLength)
                    throw new InvalidOperationException($"{stage}: column '{column}' holds more than {Array.MaxLength} values, the most one buffer can hold.");
                Array.Resize(ref buffer, (int)size);
            }
            value.CopyTo(buffer.AsSpan((int)used, dims));
            used += dims;
            rows++;
        }
        if (rows == 0)
            return ([], 0, Math.Max(dims, 0));
        if (used != buffer.Length)
            Array.Resize(ref buffer, (int)used);
        return (buffer, rows, dims);
    }

    /// <summary>The output schema shape: the input columns plus a float vector column of <paramref name="size"/>.</summary>
    public static SchemaShape OutputShape(SchemaShape input, string outputColumn, int size) =>
        Common.SchemaShapes.Append(input, (outputColumn, new VectorDataViewType(NumberDataViewType.Single, size)));

    /// <summary>The output schema: the input columns plus the layout column (hiding an input column of the same name).</summary>
    public static DataViewSchema OutputSchema(DataViewSchema input, string outputColumn, int size)
    {
        var builder = new DataViewSchema.Builder();
        foreach (var c in input)
            builder.AddColumn(c.Name, c.Type, c.Annotations);
        builder.AddColumn(outputColumn, new VectorDataViewType(NumberDataViewType.Single, size));
        return builder.ToSchema();
    }

    /// <summary>A cheap fingerprint of a buffer, used to recognise the training rows.</summary>
    public static ulong Fingerprint(ReadOnlySpan<float> data)
    {
        var words = System.Runtime.InteropServices.MemoryMarshal.Cast<float, uint>(data);
        ulong h = 1469598103934665603UL ^ (ulong)words.Length;
        foreach (uint w in words)
            h = (h ^ w) * 1099511628211UL;
        return h;
    }
}
