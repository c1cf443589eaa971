namespace Microsoft.ML.ActivationAtlas.Projection;

/// <summary>Progress of a UMAP or t-SNE fit or transform, reported through <see cref="IProgress{T}"/>.</summary>
/// <param name="Stage">The stage running, e.g. <c>knn</c>, <c>graph</c>, <c>init</c>, <c>optimize</c>.</param>
/// <param name="Fraction">How much of that stage is done, from 0 to 1.</param>
public readonly record struct ProjectionProgress(string Stage, double Fraction);
