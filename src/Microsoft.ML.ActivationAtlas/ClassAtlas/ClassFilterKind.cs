namespace Microsoft.ML.ActivationAtlas.ClassAtlas;

/// <summary>Which rows a class filter keeps (flags; the union is deduplicated).</summary>
[Flags]
public enum ClassFilterKind
{
    /// <summary>Rows whose largest attribution is to the class.</summary>
    Rank = 1,

    /// <summary>The rows with the largest attribution to the class.</summary>
    Magnitude = 2,

    /// <summary>Rows kept by either filter, each once.</summary>
    Both = Rank | Magnitude,
}
