using Microsoft.ML.ActivationAtlas.Attribution;
using Microsoft.ML.ActivationAtlas.Extraction;

namespace Microsoft.ML;

/// <summary>Catalog extension: <c>mlContext.Transforms.ComputeAttribution(...)</c>.</summary>
public static class AttributionCatalog
{
    /// <summary>
    /// Adds the attribution of every class logit to each row's activation vector (h . d(logit_k)/d(h) at the row's
    /// position), in batches of 32 on the CPU.
    /// </summary>
    /// <param name="catalog">The transforms catalog.</param>
    /// <param name="outputColumnName">The attribution column (K floats, slot names = class names).</param>
    /// <param name="model">The classifier network.</param>
    /// <param name="layer">The layer's tensor or friendly name.</param>
    /// <param name="inputColumnName">The image column.</param>
    /// <param name="positionColumnName">The position column from activation extraction.</param>
    /// <example>A runnable sample: <c>samples/AtlasSamples/ClassAtlasSample.cs</c> (<c>dotnet run -c Release --project samples/AtlasSamples -- class</c>).</example>
    public static AttributionEstimator ComputeAttribution(this TransformsCatalog catalog, string outputColumnName,
        ActivationModel model, string layer, string inputColumnName = ActivationAtlas.AtlasColumnNames.Image, string positionColumnName = ActivationAtlas.AtlasColumnNames.Position)
        => ComputeAttribution(catalog, new AttributionEstimator.Options
        {
            OutputColumnName = outputColumnName,
            Model = model,
            Layer = layer,
            InputColumnName = inputColumnName,
            PositionColumnName = positionColumnName,
        });

    /// <summary>Adds the attribution column with every setting given.</summary>
    /// <param name="catalog">The transforms catalog.</param>
    /// <param name="options">The settings.</param>
    /// <example>A runnable sample: <c>samples/AtlasSamples/ClassAtlasSample.cs</c> (<c>dotnet run -c Release --project samples/AtlasSamples -- class</c>).</example>
    public static AttributionEstimator ComputeAttribution(this TransformsCatalog catalog, AttributionEstimator.Options options)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        return new AttributionEstimator(ActivationAtlas.Common.CatalogContext.Of(catalog), options);
    }
}
