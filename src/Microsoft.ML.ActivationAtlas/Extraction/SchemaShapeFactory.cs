using System.Reflection;

namespace Microsoft.ML.ActivationAtlas.Extraction;

/// <summary>
/// Builds a <see cref="SchemaShape"/> from a <see cref="DataViewSchema"/>. ML.NET keeps both
/// <c>SchemaShape.Create</c> and the <c>SchemaShape.Column</c> constructor internal, so estimators outside ML.NET
/// reach the former by reflection (ML.NET's version is pinned centrally).
/// </summary>
internal static class SchemaShapeFactory
{
    private static readonly Func<DataViewSchema, SchemaShape> s_create = Bind();

    public static SchemaShape Create(DataViewSchema schema) => s_create(schema);

    private static Func<DataViewSchema, SchemaShape> Bind()
    {
        var method = typeof(SchemaShape).GetMethod("Create", BindingFlags.Static | BindingFlags.Public | BindingFlags.NonPublic,
            null, [typeof(DataViewSchema)], null)
            ?? throw new MissingMethodException("This version of ML.NET has no SchemaShape.Create(DataViewSchema); the library supports Microsoft.ML 5.0.x.");
        return method.CreateDelegate<Func<DataViewSchema, SchemaShape>>();
    }
}
