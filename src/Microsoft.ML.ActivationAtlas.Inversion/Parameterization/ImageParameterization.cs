namespace Microsoft.ML.ActivationAtlas.Inversion.Parameterization;

/// <summary>How an icon's pixels are parameterised for optimisation.</summary>
public enum ImageBasis
{
    /// <summary>lucid's Fourier basis with 1/frequency scaling (the default; gives natural-looking icons).</summary>
    Fourier,

    /// <summary>Plain pre-sigmoid pixels.</summary>
    Pixel,

    /// <summary>
    /// MACO: only the Fourier phase is optimised, the magnitude is fixed to a natural-image amplitude spectrum
    /// (<see cref="MacoImageParameterization"/>); needs that magnitude.
    /// </summary>
    Maco,
}

/// <summary>
/// The full image parameterisation: a basis (<see cref="FourierImageParameterization"/> or
/// <see cref="PixelImageParameterization"/>), optionally lucid's decorrelated colour, then a sigmoid into [0, 1].
/// <see cref="Forward"/> keeps what <see cref="Backward"/> needs in a caller-owned <see cref="Workspace"/>.
/// </summary>
public sealed class ImageParameterization
{
    /// <summary>Creates the parameterisation.</summary>
    /// <param name="height">Icon height.</param>
    /// <param name="width">Icon width.</param>
    /// <param name="basis">Fourier or pixel basis.</param>
    /// <param name="decorrelateColors">Whether to apply lucid's colour decorrelation matrix before the sigmoid.</param>
    /// <param name="macoMagnitude">The fixed amplitude spectrum of <see cref="ImageBasis.Maco"/> (see <see cref="MacoImageParameterization.MeanAmplitude"/>); ignored by the other bases.</param>
    public ImageParameterization(int height, int width, ImageBasis basis = ImageBasis.Fourier, bool decorrelateColors = true, ReadOnlyMemory<float> macoMagnitude = default)
    {
        Basis = basis switch
        {
            ImageBasis.Fourier => new FourierImageParameterization(height, width),
            ImageBasis.Pixel => new PixelImageParameterization(height, width),
            ImageBasis.Maco when macoMagnitude.IsEmpty => throw new ArgumentException("The MACO basis needs a magnitude (MacoImageParameterization.MeanAmplitude of natural images at the icon size).", nameof(macoMagnitude)),
            ImageBasis.Maco => new MacoImageParameterization(height, width, macoMagnitude.Span),
            _ => throw new ArgumentOutOfRangeException(nameof(basis), basis, "Unknown image basis."),
        };
        DecorrelateColors = decorrelateColors;
    }

    /// <summary>The linear basis.</summary>
    public IImageParameterization Basis { get; }

    /// <summary>Whether colours are decorrelated.</summary>
    public bool DecorrelateColors { get; }

    /// <summary>Icon height.</summary>
    public int Height => Basis.Height;

    /// <summary>Icon width.</summary>
    public int Width => Basis.Width;

    /// <summary>Parameters per icon.</summary>
    public int ParameterCount => Basis.ParameterCount;

    /// <summary>Floats of one planar RGB icon.</summary>
    public int ImageSize => 3 * Height * Width;

    /// <summary>Creates per-thread buffers for one icon.</summary>
    public Workspace CreateWorkspace() => new(this);

    /// <summary>Draws initial parameters.</summary>
    public void Initialize(Span<float> parameters, Random random) => Basis.Initialize(parameters, random);

    /// <summary>parameters -> RGB image in [0, 1], planar <c>[3, h, w]</c>.</summary>
    public void Forward(ReadOnlySpan<float> parameters, Span<float> image, Workspace workspace)
    {
        ArgumentNullException.ThrowIfNull(workspace);
        int pixels = Height * Width;
        Basis.Forward(parameters, workspace.Raw, workspace.Scratch);
        if (DecorrelateColors)
        {
            ColorDecorrelation.Forward(workspace.Raw, workspace.Colored, pixels);
            Sigmoid.Forward(workspace.Colored, image[..ImageSize]);
        }
        else
        {
            Sigmoid.Forward(workspace.Raw, image[..ImageSize]);
        }
    }

    /// <summary>Adds d(loss)/d(parameters) for d(loss)/d(image) at the point of the last <see cref="Forward"/>, of <paramref name="parameters"/>, whose output is <paramref name="image"/>.</summary>
    public void Backward(ReadOnlySpan<float> parameters, ReadOnlySpan<float> image, ReadOnlySpan<float> imageGradient, Span<float> parameterGradient, Workspace workspace)
    {
        ArgumentNullException.ThrowIfNull(workspace);
        int pixels = Height * Width;
        Sigmoid.Adjoint(image[..ImageSize], imageGradient[..ImageSize], workspace.Colored);
        if (DecorrelateColors)
        {
            ColorDecorrelation.Adjoint(workspace.Colored, workspace.Raw, pixels);
            Basis.Adjoint(parameters, workspace.Raw, parameterGradient, workspace.Scratch);
        }
        else
        {
            Basis.Adjoint(parameters, workspace.Colored, parameterGradient, workspace.Scratch);
        }
    }

    /// <summary>Buffers for one icon's forward and backward pass (not thread-safe; one per worker).</summary>
    public sealed class Workspace
    {
        internal Workspace(ImageParameterization owner)
        {
            Raw = new float[owner.ImageSize];
            Colored = new float[owner.ImageSize];
            Scratch = new float[Math.Max(1, owner.Basis.ScratchSize)];
        }

        internal float[] Raw { get; }

        internal float[] Colored { get; }

        internal float[] Scratch { get; }
    }
}
