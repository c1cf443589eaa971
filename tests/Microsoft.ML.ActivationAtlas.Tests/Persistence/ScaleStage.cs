using Microsoft.ML.ActivationAtlas.Persistence;
using Microsoft.ML.Data;
using Microsoft.ML.Transforms;

namespace Microsoft.ML.ActivationAtlas.Tests.Persistence;

/// <summary>A minimal atlas-style stage for persistence tests: multiplies a float vector column by a stored factor.</summary>
internal sealed class ScaleStageEstimator(string output, string input, double scale) : IEstimator<ITransformer>
{
    public ITransformer Fit(IDataView input1) => new ScaleStage(output, input, scale, input1.Schema);

    public SchemaShape GetOutputSchema(SchemaShape inputSchema) =>
        new ScaleStage(output, input, scale, null).Inner(null).GetOutputSchema(inputSchema);
}

[AtlasPersistence("test-scale")]
internal sealed class ScaleStage : IAtlasPersistable
{
    private readonly string _output;
    private readonly string _input;
    private readonly double _scale;
    private readonly int _size;

    public ScaleStage(string output, string input, double scale, DataViewSchema? schema)
    {
        _output = output;
        _input = input;
        _scale = scale;
        _size = schema is null ? 0 : ((VectorDataViewType)schema[input].Type).Size;
    }

    private sealed class State
    {
        public string Output { get; set; } = "";

        public string Input { get; set; } = "";

        public double Scale { get; set; }

        public int Size { get; set; }
    }

    internal IEstimator<ITransformer> Inner(MLContext? ml)
    {
        ml ??= new MLContext();
        float s = (float)_scale;
        var inDef = SchemaDefinition.Create(typeof(VecIn));
        inDef[0].ColumnName = _input;
        inDef[0].ColumnType = new VectorDataViewType(NumberDataViewType.Single, _size);
        var outDef = SchemaDefinition.Create(typeof(VecOut));
        outDef[0].ColumnName = _output;
        outDef[0].ColumnType = new VectorDataViewType(NumberDataViewType.Single, _size);
        return ml.Transforms.CustomMapping<VecIn, VecOut>((i, o) => o.V = i.V.Select(x => x * s).ToArray(), null, inDef, outDef);
    }

    private ITransformer Fitted(IDataView data) => Inner(null).Fit(data);

    public sealed class VecIn
    {
        public float[] V { get; set; } = [];
    }

    public sealed class VecOut
    {
        public float[] V { get; set; } = [];
    }

    public bool IsRowToRowMapper => true;

    public DataViewSchema GetOutputSchema(DataViewSchema inputSchema) => Fitted(new EmptyView(inputSchema)).GetOutputSchema(inputSchema);

    public IRowToRowMapper GetRowToRowMapper(DataViewSchema inputSchema) => Fitted(new EmptyView(inputSchema)).GetRowToRowMapper(inputSchema);

    public IDataView Transform(IDataView input) => Fitted(input).Transform(input);

    public void Save(ModelSaveContext ctx) =>
        throw new NotSupportedException("Pipelines with activation-atlas stages are saved with mlContext.Model.SaveAtlas(...).");

    public void SaveState(AtlasStateWriter writer) =>
        writer.WriteJson("scale.json", new State { Output = _output, Input = _input, Scale = _scale, Size = _size });

    internal static ITransformer LoadState(MLContext mlContext, AtlasStateReader reader)
    {
        var s = reader.ReadJson<State>("scale.json");
        var stage = new ScaleStage(s.Output, s.Input, s.Scale, null);
        typeof(ScaleStage).GetField(nameof(_size), System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Instance)!.SetValue(stage, s.Size);
        return stage;
    }

    /// <summary>A row-less view with a given schema, to bind the inner mapping.</summary>
    private sealed class EmptyView(DataViewSchema schema) : IDataView
    {
        public bool CanShuffle => false;

        public DataViewSchema Schema => schema;

        public long? GetRowCount() => 0;

        public DataViewRowCursor GetRowCursor(IEnumerable<DataViewSchema.Column> columnsNeeded, Random? rand = null) => throw new NotSupportedException();

        public DataViewRowCursor[] GetRowCursorSet(IEnumerable<DataViewSchema.Column> columnsNeeded, int n, Random? rand = null) => throw new NotSupportedException();
    }
}
