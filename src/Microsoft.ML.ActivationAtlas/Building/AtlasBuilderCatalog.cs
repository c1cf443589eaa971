using Microsoft.ML.ActivationAtlas.Building;

namespace Microsoft.ML;

/// <summary>Catalog extension: <c>mlContext.Atlas()</c>, the one-call atlas builder.</summary>
public static class AtlasBuilderCatalog
{
    /// <summary>The atlas builder of this context: <c>mlContext.Atlas().Build(imageFolder, outputFolder, options)</c>.</summary>
    /// <param name="mlContext">The context.</param>
    public static AtlasBuilder Atlas(this MLContext mlContext) => new(mlContext);
}
