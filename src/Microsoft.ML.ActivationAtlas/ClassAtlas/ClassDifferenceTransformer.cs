using Microsoft.ML.ActivationAtlas.Common;
using Microsoft.ML.ActivationAtlas.Persistence;
using Microsoft.ML.Data;

namespace Microsoft.ML.ActivationAtlas.ClassAtlas;

/// <summary>
/// Adds the class-comparison x coordinate: <c>clip((attribution[a] - attribution[b]) / scale, -1, 1)</c>, with the
/// scale fitted by <see cref="ClassDifferenceEstimator"/>.
/// </summary>
[AtlasPersistence("class-difference")]
public sealed class ClassDifferenceTransformer : ITransformer, IAtlasPersistable
{
    internal ClassDifferenceTransformer(string outputColumnName, string attributionColumnName, int classA, int classB, float scale)
    {
        OutputColumnName = outputColumnName;
        AttributionColumnName = attributionColumnName;
        ClassA = classA;
        ClassB = classB;
        Scale = scale;
    }

    /// <summary>The output column.</summary>
    public string OutputColumnName { get; }

    /// <summary>The attribution column read.</summary>
    public string AttributionColumnName { get; }

    /// <summary>The class at +1.</summary>
    public int ClassA { get; }

    /// <summary>The class at -1.</summary>
    public int ClassB { get; }

    /// <summary>The fitted percentile of |difference| that maps to 1.</summary>
    public float Scale { get; }

    /// <summary>Always true.</summary>
    public bool IsRowToRowMapper => true;

    /// <summary>The input schema with the output column.</summary>
    public DataViewSchema GetOutputSchema(DataViewSchema inputSchema) => new Mapper(this, inputSchema).OutputSchema;

    /// <summary>A row mapper, for prediction engines.</summary>
    public IRowToRowMapper GetRowToRowMapper(DataViewSchema inputSchema) => new Mapper(this, inputSchema).AsRowToRowMapper();

    /// <summary>Lazily adds the output column.</summary>
    public IDataView Transform(IDataView input) => new Mapper(this, input.Schema).Apply(input);

    /// <summary>Not supported: use <c>mlContext.Model.SaveAtlas(...)</c>.</summary>
    void ICanSaveModel.Save(ModelSaveContext ctx)
        => throw new NotSupportedException("ClassDifferenceTransformer is saved with mlContext.Model.SaveAtlas(...), not mlContext.Model.Save(...).");

    void IAtlasPersistable.SaveState(AtlasStateWriter writer)
        => writer.WriteJson("state", new State { Output = OutputColumnName, Input = AttributionColumnName, A = ClassA, B = ClassB, Scale = Scale });

    internal static ITransformer LoadState(MLContext mlContext, AtlasStateReader reader)
    {
        var s = reader.ReadJson<State>("state");
        return new ClassDifferenceTransformer(s.Output, s.Input, s.A, s.B, s.Scale);
    }

    private sealed class State
    {
        public string Output = "";
        public string Input = "";
        public int A;
        public int B;
        public float Scale;
    }

    private sealed class Mapper : AppendedColumnsMapper
    {
        private readonly ClassDifferenceTransformer _parent;
        private readonly DataViewSchema.Column _input;

        public Mapper(ClassDifferenceTransformer parent, DataViewSchema schema) : base(schema)
        {
            _parent = parent;
            _input = SchemaShapes.FloatVector(schema, parent.AttributionColumnName, "attribution");
            int size = ((VectorDataViewType)_input.Type).Size;
            if (size > 0 && Math.Max(parent.ClassA, parent.ClassB) >= size)
                throw new ArgumentOutOfRangeException(nameof(schema), $"Class {Math.Max(parent.ClassA, parent.ClassB)} is outside the {size} classes of column '{parent.AttributionColumnName}'.");
        }

        protected override IReadOnlyList<DataViewSchema.DetachedColumn> AddedColumns => [new(_parent.OutputColumnName, NumberDataViewType.Single)];

        protected override IEnumerable<DataViewSchema.Column> Dependencies(int addedIndex) => [_input];

        protected override Delegate CreateGetter(DataViewRow input, int addedIndex)
        {
            var getter = input.GetGetter<VBuffer<float>>(_input);
            VBuffer<float> attr = default;
            var p = _parent;
            return (ValueGetter<float>)((ref float dst) =>
            {
                getter(ref attr);
                float d = (attr.GetItemOrDefault(p.ClassA) - attr.GetItemOrDefault(p.ClassB)) / p.Scale;
                dst = Math.Clamp(d, -1f, 1f);
            });
        }
    }
}
