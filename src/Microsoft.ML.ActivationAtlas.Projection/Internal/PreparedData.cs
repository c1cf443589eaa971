using System.Runtime.CompilerServices;

namespace Microsoft.ML.ActivationAtlas.Projection.Internal;

/// <summary>
/// Row-major input rows ready for distance evaluation. Euclidean keeps the caller's buffer (no copy);
/// cosine keeps an L2-normalised copy. Distances inside the kNN searches are "reduced" (squared euclidean,
/// or <c>1 - dot</c>), which order rows the same way; <see cref="ToTrue"/> converts them.
/// </summary>
internal sealed class PreparedData
{
    public PreparedData(float[] data, int rows, int dims, DistanceMetric metric, string what = "data")
    {
        Validate(data, rows, dims, what);
        Rows = rows;
        Dims = dims;
        Metric = metric;
        Data = metric == DistanceMetric.Cosine ? Normalize(data, rows, dims) : data;
    }

    public float[] Data { get; }

    public int Rows { get; }

    public int Dims { get; }

    public DistanceMetric Metric { get; }

    public ReadOnlySpan<float> Row(int i) => new(Data, i * Dims, Dims);

    /// <summary>Starts loading row <paramref name="i"/> into cache.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Prefetch(int i) => Distances.Prefetch(Data, (long)i * Dims, Dims);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public float Reduced(int i, int j) => Reduced(Row(i), Row(j));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public float Reduced(ReadOnlySpan<float> x, ReadOnlySpan<float> y) =>
        Metric == DistanceMetric.Cosine ? Math.Max(0f, 1f - Distances.Dot(x, y)) : Distances.SquaredEuclidean(x, y);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public float ToTrue(float reduced) => Metric == DistanceMetric.Cosine ? reduced : MathF.Sqrt(reduced);

    /// <summary>Prepares query rows the same way (normalised for cosine).</summary>
    public float[] PrepareQueries(float[] queries, int rows, string what)
    {
        Validate(queries, rows, Dims, what);
        return Metric == DistanceMetric.Cosine ? Normalize(queries, rows, Dims) : queries;
    }

    public static void Validate(float[] data, int rows, int dims, string what)
    {
        ArgumentNullException.ThrowIfNull(data);
        if (rows <= 0 || dims <= 0)
            throw new ArgumentException($"{what}: needs at least one row and one column (got {rows} x {dims}).");
        if ((long)rows * dims != data.Length)
            throw new ArgumentException($"{what}: the buffer holds {data.Length} values, but {rows} rows x {dims} columns = {(long)rows * dims} were expected (every row must have {dims} values).");
        if (!System.Numerics.Tensors.TensorPrimitives.IsFiniteAll<float>(data))
        {
            for (long k = 0; k < data.Length; k++)
            {
                if (!float.IsFinite(data[k]))
                    throw new ArgumentException($"{what}: row {k / dims}, column {k % dims} is {data[k]}; UMAP and t-SNE need finite values (remove or impute NaN/infinite values first).");
            }
        }
    }

    private static float[] Normalize(float[] data, int rows, int dims)
    {
        var result = new float[data.Length];
        Parallel.For(0, rows, i =>
        {
            var src = new ReadOnlySpan<float>(data, i * dims, dims);
            var dst = new Span<float>(result, i * dims, dims);
            float norm = System.Numerics.Tensors.TensorPrimitives.Norm(src);
            if (norm > 0f)
                System.Numerics.Tensors.TensorPrimitives.Multiply(src, 1f / norm, dst);
        });
        return result;
    }
}
