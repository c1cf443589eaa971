namespace Microsoft.ML.ActivationAtlas.Inversion.Parameterization;

/// <summary>
/// The plain pixel parameterisation (lucid's <c>pixel_image</c>): the parameters are the pre-sigmoid pixels,
/// <c>[3, height, width]</c>, initialised from N(0, sd^2) with sd = 0.01.
/// </summary>
public sealed class PixelImageParameterization : IImageParameterization
{
    private readonly float _initStd;

    /// <summary>Creates the parameterisation for images of the given size.</summary>
    /// <param name="height">Image height in pixels.</param>
    /// <param name="width">Image width in pixels.</param>
    /// <param name="initialStd">Standard deviation of the initial pixels (lucid: 0.01).</param>
    public PixelImageParameterization(int height, int width, double initialStd = 0.01)
    {
        if (height < 1 || width < 1)
            throw new ArgumentOutOfRangeException(nameof(height), $"Icon size must be positive; got {height}x{width}.");
        if (!(initialStd > 0) || double.IsInfinity(initialStd))
            throw new ArgumentOutOfRangeException(nameof(initialStd), "The initial pixels' standard deviation must be positive.");
        Height = height;
        Width = width;
        _initStd = (float)initialStd;
    }

    /// <inheritdoc/>
    public int Height { get; }

    /// <inheritdoc/>
    public int Width { get; }

    /// <inheritdoc/>
    public int ParameterCount => 3 * Height * Width;

    /// <inheritdoc/>
    public int ScratchSize => 0;

    /// <inheritdoc/>
    public void Initialize(Span<float> parameters, Random random)
    {
        ArgumentNullException.ThrowIfNull(random);
        Gaussian.Fill(parameters[..ParameterCount], random, _initStd);
    }

    /// <inheritdoc/>
    public void Forward(ReadOnlySpan<float> parameters, Span<float> image, Span<float> scratch) =>
        parameters[..ParameterCount].CopyTo(image);

    /// <inheritdoc/>
    public void Adjoint(ReadOnlySpan<float> parameters, ReadOnlySpan<float> imageGradient, Span<float> parameterGradient, Span<float> scratch) =>
        System.Numerics.Tensors.TensorPrimitives.Add(parameterGradient[..ParameterCount], imageGradient[..ParameterCount], parameterGradient);
}
