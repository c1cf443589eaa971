using Microsoft.ML.ActivationAtlas.Persistence;
using Microsoft.ML.ActivationAtlas.Projection.Tsne;
using Microsoft.ML.Data;

namespace Microsoft.ML.ActivationAtlas.Projection;

/// <summary>
/// A fitted t-SNE layout. Given exactly the training rows (same rows, same order) <see cref="Transform"/> returns the
/// fitted positions. t-SNE cannot place new rows, so any other input is interpolated row by row: a row equal to a
/// training row gets that row's position, any other row the inverse-distance-weighted mean of the positions of its
/// 5 nearest training rows (<see cref="TsneModel.Place"/>).
/// </summary>
[AtlasPersistence("tsne")]
public sealed class TsneTransformer : ITransformer, IAtlasPersistable
{
    private readonly ulong _trainingFingerprint;

    internal TsneTransformer(TsneModel model, string inputColumnName, string outputColumnName, ulong trainingFingerprint)
    {
        Model = model;
        InputColumnName = inputColumnName;
        OutputColumnName = outputColumnName;
        _trainingFingerprint = trainingFingerprint;
    }

    /// <summary>The fitted t-SNE.</summary>
    public TsneModel Model { get; }

    /// <summary>The column laid out.</summary>
    public string InputColumnName { get; }

    /// <summary>The layout column produced.</summary>
    public string OutputColumnName { get; }

    /// <summary>Always false: the layout is computed for whole batches.</summary>
    public bool IsRowToRowMapper => false;

    /// <summary>The input schema plus the layout column.</summary>
    /// <param name="inputSchema">The input schema.</param>
    public DataViewSchema GetOutputSchema(DataViewSchema inputSchema)
    {
        ProjectionColumns.CheckInput(inputSchema, InputColumnName, "t-SNE transform");
        return ProjectionColumns.OutputSchema(inputSchema, OutputColumnName, Model.OutputDimension);
    }

    /// <summary>Not supported: call <see cref="Transform"/> on an <see cref="IDataView"/>.</summary>
    /// <param name="inputSchema">The input schema.</param>
    public IRowToRowMapper GetRowToRowMapper(DataViewSchema inputSchema) =>
        throw new NotSupportedException("t-SNE has no row-to-row mapper; call Transform on an IDataView.");

    /// <summary>The fitted positions of the training rows, or interpolated positions of other rows.</summary>
    /// <param name="input">Data with the input column.</param>
    public IDataView Transform(IDataView input)
    {
        ArgumentNullException.ThrowIfNull(input);
        var (data, rows, _) = ProjectionColumns.Read(input, InputColumnName, "t-SNE transform", Model.InputDimension, default);
        float[] layout = rows == Model.Rows && ProjectionColumns.Fingerprint(data) == _trainingFingerprint && data.AsSpan().SequenceEqual(Model.TrainingData)
            ? (float[])Model.Embedding.Clone()
            : Model.Place(data, rows);
        return new LayoutDataView(input, OutputColumnName, layout, Model.OutputDimension, rows);
    }

    /// <summary>Not supported: save with <c>mlContext.Model.SaveAtlas(...)</c>.</summary>
    /// <param name="ctx">Unused.</param>
    void ICanSaveModel.Save(ModelSaveContext ctx) =>
        throw new NotSupportedException("TsneTransformer is saved with mlContext.Model.SaveAtlas(...) (ML.NET's own model format cannot hold it).");

    void IAtlasPersistable.SaveState(AtlasStateWriter writer)
    {
        writer.WriteJson("settings.json", new TsneState
        {
            InputColumnName = InputColumnName,
            OutputColumnName = OutputColumnName,
            Rows = Model.Rows,
            InputDimension = Model.InputDimension,
            Options = Model.Options,
        });
        writer.WriteFloats("training.f32", Model.TrainingData);
        writer.WriteFloats("embedding.f32", Model.Embedding);
    }

    internal static ITransformer LoadState(MLContext mlContext, AtlasStateReader reader)
    {
        var s = reader.ReadJson<TsneState>("settings.json");
        var training = reader.ReadFloats("training.f32");
        try
        {
            var model = new TsneModel(s.Options, training, s.Rows, s.InputDimension, reader.ReadFloats("embedding.f32"));
            return new TsneTransformer(model, s.InputColumnName, s.OutputColumnName, ProjectionColumns.Fingerprint(training));
        }
        catch (ArgumentException e)
        {
            throw new InvalidDataException($"{reader.ModelPath}: the t-SNE state is inconsistent: {e.Message}", e);
        }
    }

    private sealed class TsneState
    {
        public string InputColumnName { get; set; } = "";

        public string OutputColumnName { get; set; } = "";

        public int Rows { get; set; }

        public int InputDimension { get; set; }

        public TsneOptions Options { get; set; } = new();
    }
}
