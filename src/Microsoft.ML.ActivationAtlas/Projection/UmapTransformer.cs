using Microsoft.ML.ActivationAtlas.Persistence;
using Microsoft.ML.ActivationAtlas.Projection.Knn;
using Microsoft.ML.ActivationAtlas.Projection.Umap;
using Microsoft.ML.Data;

namespace Microsoft.ML.ActivationAtlas.Projection;

/// <summary>
/// A fitted UMAP layout. <see cref="Transform"/> returns the fitted positions when given exactly the training rows
/// (same rows, same order), and otherwise places every row with UMAP's transform (neighbours among the training rows,
/// weighted-mean start, optimisation against the frozen training layout). The input column is read and the layout
/// computed when <see cref="Transform"/> is called.
/// </summary>
[AtlasPersistence("umap")]
public sealed class UmapTransformer : ITransformer, IAtlasPersistable
{
    private readonly ulong _trainingFingerprint;

    private readonly long _firstRowIndex;
    private readonly long _totalRows;

    internal UmapTransformer(UmapModel model, string inputColumnName, string outputColumnName, ulong trainingFingerprint,
        long firstRowIndex = 0, long totalRows = -1)
    {
        Model = model;
        InputColumnName = inputColumnName;
        OutputColumnName = outputColumnName;
        _trainingFingerprint = trainingFingerprint;
        _firstRowIndex = firstRowIndex;
        _totalRows = totalRows;
    }

    /// <summary>
    /// A transformer for a part of a larger set of new rows: the rows it transforms are rows
    /// <paramref name="firstRowIndex"/> onwards of a set of <paramref name="totalRows"/>, and each lands where it lands
    /// when the whole set is transformed at once (see <see cref="UmapModel.Transform(float[], int, long, long, IProgress{ProjectionProgress}?, CancellationToken)"/>).
    /// </summary>
    /// <param name="firstRowIndex">The index of the part's first row in the whole set.</param>
    /// <param name="totalRows">The number of rows of the whole set.</param>
    public UmapTransformer ForPartOf(long firstRowIndex, long totalRows)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(firstRowIndex);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(totalRows, firstRowIndex);
        return new UmapTransformer(Model, InputColumnName, OutputColumnName, _trainingFingerprint, firstRowIndex, totalRows) { Progress = Progress };
    }

    /// <summary>The fitted UMAP (training layout, curve parameters, neighbour graph).</summary>
    public UmapModel Model { get; }

    /// <summary>The column laid out.</summary>
    public string InputColumnName { get; }

    /// <summary>The layout column produced.</summary>
    public string OutputColumnName { get; }

    /// <summary>Progress of transforms (optional).</summary>
    public IProgress<ProjectionProgress>? Progress { get; set; }

    /// <summary>Always false: the layout of a row depends on the whole batch being transformed.</summary>
    public bool IsRowToRowMapper => false;

    /// <summary>The input schema plus the layout column.</summary>
    /// <param name="inputSchema">The input schema.</param>
    public DataViewSchema GetOutputSchema(DataViewSchema inputSchema)
    {
        ProjectionColumns.CheckInput(inputSchema, InputColumnName, "UMAP transform");
        return ProjectionColumns.OutputSchema(inputSchema, OutputColumnName, Model.OutputDimension);
    }

    /// <summary>Not supported: UMAP places rows in batches.</summary>
    /// <param name="inputSchema">The input schema.</param>
    public IRowToRowMapper GetRowToRowMapper(DataViewSchema inputSchema) =>
        throw new NotSupportedException("UMAP places rows in batches, so it has no row-to-row mapper; call Transform on an IDataView.");

    /// <summary>Lays out the rows of <paramref name="input"/>.</summary>
    /// <param name="input">Data with the input column.</param>
    public IDataView Transform(IDataView input)
    {
        ArgumentNullException.ThrowIfNull(input);
        var (data, rows, _) = ProjectionColumns.Read(input, InputColumnName, "UMAP transform", Model.InputDimension, default);
        float[] layout;
        if (_totalRows < 0 && rows == Model.Rows && ProjectionColumns.Fingerprint(data) == _trainingFingerprint && data.AsSpan().SequenceEqual(Model.TrainingData))
            layout = (float[])Model.Embedding.Clone();
        else if (_totalRows >= 0 && _firstRowIndex + rows > _totalRows)
            throw new InvalidOperationException($"This UMAP transformer is for rows {_firstRowIndex} to {_totalRows - 1} of a set; it was given {rows} rows.");
        else
            layout = Model.Transform(data, rows, _firstRowIndex, _totalRows < 0 ? rows : _totalRows, Progress);
        return new LayoutDataView(input, OutputColumnName, layout, Model.OutputDimension, rows);
    }

    /// <summary>Not supported: save with <c>mlContext.Model.SaveAtlas(...)</c>.</summary>
    /// <param name="ctx">Unused.</param>
    void ICanSaveModel.Save(ModelSaveContext ctx) =>
        throw new NotSupportedException("UmapTransformer is saved with mlContext.Model.SaveAtlas(...) (ML.NET's own model format cannot hold it).");

    void IAtlasPersistable.SaveState(AtlasStateWriter writer)
    {
        writer.WriteJson("settings.json", new UmapState
        {
            InputColumnName = InputColumnName,
            OutputColumnName = OutputColumnName,
            Rows = Model.Rows,
            InputDimension = Model.InputDimension,
            K = Model.Knn.K,
            A = Model.A,
            B = Model.B,
            Options = Model.Options,
        });
        writer.WriteFloats("training.f32", Model.TrainingData);
        writer.WriteFloats("embedding.f32", Model.Embedding);
        writer.WriteInts("knn_indices.i32", Model.Knn.Indices);
        writer.WriteFloats("knn_distances.f32", Model.Knn.Distances);
    }

    internal static ITransformer LoadState(MLContext mlContext, AtlasStateReader reader)
    {
        var s = reader.ReadJson<UmapState>("settings.json");
        var training = reader.ReadFloats("training.f32");
        var embedding = reader.ReadFloats("embedding.f32");
        var knn = new KnnGraph(reader.ReadInts("knn_indices.i32"), reader.ReadFloats("knn_distances.f32"), s.Rows, s.K);
        try
        {
            var model = new UmapModel(s.Options, training, s.Rows, s.InputDimension, knn, embedding, s.A, s.B);
            return new UmapTransformer(model, s.InputColumnName, s.OutputColumnName, ProjectionColumns.Fingerprint(training));
        }
        catch (ArgumentException e)
        {
            throw new InvalidDataException($"{reader.ModelPath}: the UMAP state is inconsistent: {e.Message}", e);
        }
    }

    private sealed class UmapState
    {
        public string InputColumnName { get; set; } = "";

        public string OutputColumnName { get; set; } = "";

        public int Rows { get; set; }

        public int InputDimension { get; set; }

        public int K { get; set; }

        public float A { get; set; }

        public float B { get; set; }

        public UmapOptions Options { get; set; } = new();
    }
}
