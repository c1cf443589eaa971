namespace Microsoft.ML.ActivationAtlas.Inversion.Objectives;

/// <summary>How target directions are whitened against the layer's activation statistics.</summary>
public enum WhiteningKind
{
    /// <summary>No whitening.</summary>
    None,

    /// <summary>
    /// The activation atlas' choice: the objective uses <c>S v</c> with S the inverse of the uncentred second moment
    /// of the collected activations, so directions that many images share count less than distinctive ones.
    /// </summary>
    SecondMomentInverse,

    /// <summary>
    /// True ZCA: activations and targets are centred and mapped by <c>W = C^-1/2</c> (C the covariance) and the
    /// objective is evaluated in that whitened space.
    /// </summary>
    Zca,
}
