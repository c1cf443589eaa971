namespace Microsoft.ML.ActivationAtlas.Projection;

/// <summary>The distance between input rows used to find neighbours.</summary>
public enum DistanceMetric
{
    /// <summary>Euclidean distance, <c>sqrt(sum((x - y)^2))</c>.</summary>
    Euclidean = 0,

    /// <summary>
    /// Cosine distance, <c>1 - x.y / (|x| |y|)</c>. A row of zeros is at distance 1 from every other row
    /// (and from other zero rows), as in pynndescent.
    /// </summary>
    Cosine = 1,
}
