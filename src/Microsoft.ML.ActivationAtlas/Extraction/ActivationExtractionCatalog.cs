using Microsoft.ML.ActivationAtlas.Extraction;

namespace Microsoft.ML;

/// <summary>Catalog extension: <c>mlContext.Transforms.ExtractActivations(...)</c>.</summary>
public static class ActivationExtractionCatalog
{
    /// <summary>
    /// Extracts the activations of one layer of <paramref name="model"/> for each image (one random position per
    /// image, margin 1, seed 0, batches of 32, on the CPU).
    /// </summary>
    /// <param name="catalog">The transforms catalog.</param>
    /// <param name="outputColumnName">The activation vector column.</param>
    /// <param name="model">The network, e.g. <see cref="PretrainedModels.ResNet18"/>.</param>
    /// <param name="layer">The layer's tensor or friendly name, e.g. <c>ReLU393_Output_0</c>.</param>
    /// <param name="inputColumnName">The image column (or float vector of planar RGB pixels 0..255).</param>
    /// <param name="sampling">Which position(s) become rows.</param>
    /// <example>A runnable sample: <c>samples/AtlasSamples/AtlasPipelineSample.cs</c> (<c>dotnet run -c Release --project samples/AtlasSamples -- pipeline</c>).</example>
    public static ActivationExtractingEstimator ExtractActivations(this TransformsCatalog catalog, string outputColumnName,
        ActivationModel model, string layer, string inputColumnName = ActivationAtlas.AtlasColumnNames.Image, ActivationSampling sampling = ActivationSampling.RandomPosition)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        return new ActivationExtractingEstimator(CatalogContext(catalog), new ActivationExtractingEstimator.Options
        {
            Model = model,
            Layers = [layer],
            OutputColumnNames = [outputColumnName],
            InputColumnName = inputColumnName,
            Sampling = sampling,
        });
    }

    /// <summary>Extracts activations of one or more layers with every setting given.</summary>
    /// <param name="catalog">The transforms catalog.</param>
    /// <param name="options">The settings.</param>
    /// <example>A runnable sample: <c>samples/AtlasSamples/AtlasPipelineSample.cs</c> (<c>dotnet run -c Release --project samples/AtlasSamples -- pipeline</c>).</example>
    public static ActivationExtractingEstimator ExtractActivations(this TransformsCatalog catalog, ActivationExtractingEstimator.Options options)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        return new ActivationExtractingEstimator(CatalogContext(catalog), options);
    }

    private static MLContext CatalogContext(TransformsCatalog catalog) => ActivationAtlas.Common.CatalogContext.Of(catalog);
}
