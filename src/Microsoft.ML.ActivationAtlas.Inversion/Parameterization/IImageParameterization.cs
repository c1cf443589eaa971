namespace Microsoft.ML.ActivationAtlas.Inversion.Parameterization;

/// <summary>
/// A map from optimisable parameters to one un-squashed, planar RGB image <c>[3, height, width]</c>, with the adjoint of
/// its Jacobian (linear for the Fourier and pixel bases, not for MACO's phases). Colour decorrelation and the sigmoid
/// follow it (see <see cref="ImageParameterization"/>).
/// </summary>
public interface IImageParameterization
{
    /// <summary>Image height in pixels.</summary>
    int Height { get; }

    /// <summary>Image width in pixels.</summary>
    int Width { get; }

    /// <summary>Parameters of one image.</summary>
    int ParameterCount { get; }

    /// <summary>Scratch floats that <see cref="Forward"/> and <see cref="Adjoint"/> need.</summary>
    int ScratchSize { get; }

    /// <summary>Draws initial parameters.</summary>
    void Initialize(Span<float> parameters, Random random);

    /// <summary>Writes the image <c>[3, height, width]</c> for the parameters (overwrites it).</summary>
    void Forward(ReadOnlySpan<float> parameters, Span<float> image, Span<float> scratch);

    /// <summary>
    /// Adds the adjoint of the Jacobian of <see cref="Forward"/> at <paramref name="parameters"/>, applied to
    /// <paramref name="imageGradient"/>, into <paramref name="parameterGradient"/>.
    /// </summary>
    void Adjoint(ReadOnlySpan<float> parameters, ReadOnlySpan<float> imageGradient, Span<float> parameterGradient, Span<float> scratch);
}
