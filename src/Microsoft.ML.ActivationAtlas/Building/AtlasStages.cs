using Microsoft.ML.ActivationAtlas.Binning;
using Microsoft.ML.ActivationAtlas.Projection;

namespace Microsoft.ML.ActivationAtlas.Building;

/// <summary>The stage settings the builder and a reopened atlas share: the cosine UMAP layout and the aggregation of binned rows.</summary>
internal static class AtlasStages
{
    /// <summary>The activation column of the builder's in-memory views.</summary>
    public const string Activation = "Activation";

    /// <summary>The class-value column of the builder's in-memory views.</summary>
    public const string ClassValues = "Labels";

    /// <summary>Fits a 2-D cosine UMAP layout (column <c>Layout</c>) of the <see cref="Activation"/> column.</summary>
    public static UmapTransformer FitLayout(MLContext ml, IDataView view, int rows, int neighbors, float minDist, int seed, bool deterministic,
        IProgress<double> progress, CancellationToken ct)
    {
        var umap = ml.Transforms.ProjectToUmap(new UmapEstimator.Options
        {
            OutputColumnName = "Layout",
            InputColumnName = Activation,
            // Small sets: UMAP needs more rows than neighbours.
            NumberOfNeighbors = Math.Min(neighbors, rows - 1),
            MinDist = minDist,
            Metric = DistanceMetric.Cosine,
            Seed = seed,
            Deterministic = deterministic,
            Progress = new SyncProgress<ProjectionProgress>(x => progress.Report(x.Fraction)),
            CancellationToken = ct,
        }).Fit(view);
        umap.Progress = null;
        return umap;
    }

    /// <summary>Aggregates binned rows (<see cref="Activation"/>, <see cref="ClassValues"/> and the grid column) into an atlas.</summary>
    public static GridAtlas Aggregate(MLContext ml, IDataView binned, IReadOnlyList<string> classNames, int minimumCount,
        IProgress<double>? progress, CancellationToken ct) =>
        ml.Data.AggregateAtlas(binned, new AtlasAggregationOptions
        {
            ActivationColumnName = Activation,
            AttributionColumnName = classNames.Count > 0 ? ClassValues : null,
            ClassNames = classNames,
            MinimumCount = minimumCount,
        }, progress, ct);
}
