namespace Microsoft.ML.ActivationAtlas.Persistence;

/// <summary>
/// A fitted transformer of this library that saves its state into an atlas model file
/// (see <see cref="AtlasModelCatalog"/>). ML.NET's own persistence API is internal to ML.NET, so
/// these transformers write their state through <see cref="AtlasStateWriter"/> instead.
/// </summary>
/// <remarks>
/// The implementing class also carries <see cref="AtlasPersistenceAttribute"/> naming its kind and declares
/// <c>internal static ITransformer LoadState(MLContext mlContext, AtlasStateReader reader)</c>, which the
/// loader finds by reflection.
/// </remarks>
internal interface IAtlasPersistable : ITransformer
{
    /// <summary>Writes everything needed to rebuild this transformer.</summary>
    void SaveState(AtlasStateWriter writer);
}

/// <summary>Names the stable kind under which a transformer's state is stored (e.g. <c>umap</c>).</summary>
[AttributeUsage(AttributeTargets.Class, Inherited = false)]
internal sealed class AtlasPersistenceAttribute(string kind, int version = 1) : Attribute
{
    /// <summary>The stable kind written into the file.</summary>
    public string Kind { get; } = kind;

    /// <summary>The state format's version; a loader refuses newer versions with a clear message.</summary>
    public int Version { get; } = version;
}
