using Microsoft.ML.ActivationAtlas.Projection;
using Microsoft.ML.ActivationAtlas.Projection.Tsne;
using Microsoft.ML.ActivationAtlas.Projection.Umap;

namespace Microsoft.ML;

/// <summary>UMAP and t-SNE layouts in ML.NET pipelines: <c>mlContext.Transforms.ProjectToUmap(...)</c>, <c>ProjectToTsne(...)</c>.</summary>
public static class ProjectionCatalog
{
    /// <summary>Fits a UMAP layout of a float-vector column (umap-learn 0.5 defaults).</summary>
    /// <param name="catalog">The transforms catalog.</param>
    /// <param name="outputColumnName">The layout column to create.</param>
    /// <param name="inputColumnName">The float-vector column to lay out; null means <paramref name="outputColumnName"/>.</param>
    /// <param name="numberOfNeighbors">Neighbourhood size (15; atlases use 20 or 50).</param>
    /// <param name="minDist">Minimum distance between laid-out points (0.1; atlases use 0.01 or 0.05).</param>
    /// <param name="metric">Input distance (euclidean; atlases use cosine).</param>
    /// <param name="numberOfComponents">Layout dimension (2).</param>
    /// <param name="seed">Seed; null (the default) draws one from the <see cref="MLContext"/>'s random stream (reproducible for <c>new MLContext(seed: s)</c>).</param>
    /// <example>A runnable sample: <c>samples/AtlasSamples/AtlasPipelineSample.cs</c> (<c>dotnet run -c Release --project samples/AtlasSamples -- pipeline</c>).</example>
    public static UmapEstimator ProjectToUmap(this TransformsCatalog catalog, string outputColumnName, string? inputColumnName = null,
        int numberOfNeighbors = UmapOptions.Defaults.Neighbors, float minDist = UmapOptions.Defaults.MinDist, DistanceMetric metric = DistanceMetric.Euclidean,
        int numberOfComponents = UmapOptions.Defaults.Components, int? seed = null)
        => ProjectToUmap(catalog, new UmapEstimator.Options
        {
            OutputColumnName = outputColumnName,
            InputColumnName = inputColumnName,
            NumberOfNeighbors = numberOfNeighbors,
            MinDist = minDist,
            Metric = metric,
            NumberOfComponents = numberOfComponents,
            Seed = seed,
        });

    /// <summary>Fits a UMAP layout with all settings.</summary>
    /// <param name="catalog">The transforms catalog.</param>
    /// <param name="options">The settings.</param>
    /// <example>A runnable sample: <c>samples/AtlasSamples/AtlasPipelineSample.cs</c> (<c>dotnet run -c Release --project samples/AtlasSamples -- pipeline</c>).</example>
    public static UmapEstimator ProjectToUmap(this TransformsCatalog catalog, UmapEstimator.Options options)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        return new UmapEstimator(catalog, options);
    }

    /// <summary>Fits a Barnes-Hut t-SNE layout of a float-vector column (scikit-learn defaults).</summary>
    /// <param name="catalog">The transforms catalog.</param>
    /// <param name="outputColumnName">The layout column to create.</param>
    /// <param name="inputColumnName">The float-vector column to lay out; null means <paramref name="outputColumnName"/>.</param>
    /// <param name="numberOfComponents">Layout dimension, 1 or 2 (2).</param>
    /// <param name="perplexity">Perplexity (30).</param>
    /// <param name="metric">Input distance (euclidean).</param>
    /// <param name="seed">Seed; null (the default) draws one from the <see cref="MLContext"/>'s random stream (reproducible for <c>new MLContext(seed: s)</c>).</param>
    /// <example>A runnable sample: <c>samples/AtlasSamples/ClassAtlasSample.cs</c> (<c>dotnet run -c Release --project samples/AtlasSamples -- class</c>).</example>
    public static TsneEstimator ProjectToTsne(this TransformsCatalog catalog, string outputColumnName, string? inputColumnName = null,
        int numberOfComponents = TsneOptions.Defaults.Components, float perplexity = TsneOptions.Defaults.Perplexity, DistanceMetric metric = DistanceMetric.Euclidean, int? seed = null)
        => ProjectToTsne(catalog, new TsneEstimator.Options
        {
            OutputColumnName = outputColumnName,
            InputColumnName = inputColumnName,
            NumberOfComponents = numberOfComponents,
            Perplexity = perplexity,
            Metric = metric,
            Seed = seed,
        });

    /// <summary>Fits a Barnes-Hut t-SNE layout with all settings.</summary>
    /// <param name="catalog">The transforms catalog.</param>
    /// <param name="options">The settings.</param>
    /// <example>A runnable sample: <c>samples/AtlasSamples/ClassAtlasSample.cs</c> (<c>dotnet run -c Release --project samples/AtlasSamples -- class</c>).</example>
    public static TsneEstimator ProjectToTsne(this TransformsCatalog catalog, TsneEstimator.Options options)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        return new TsneEstimator(catalog, options);
    }
}
