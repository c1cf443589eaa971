using Microsoft.ML.ActivationAtlas.Inversion.Objectives;
using Microsoft.ML.ActivationAtlas.Inversion.Parameterization;
using Microsoft.ML.ActivationAtlas.Inversion.Transforms;

namespace Microsoft.ML.ActivationAtlas.Inversion;

/// <summary>Settings of <see cref="IconRenderer"/>. The defaults follow the activation atlas article.</summary>
public sealed class IconRenderOptions
{
    /// <summary>Icon side in pixels (default 80).</summary>
    public int Size { get; set; } = 80;

    /// <summary>Adam steps per attempt (default 512).</summary>
    public int Steps { get; set; } = 512;

    /// <summary>Independent attempts per icon; the one with the best clean objective is kept (default 2).</summary>
    public int Attempts { get; set; } = 2;

    /// <summary>Icons optimised together in one network batch (default 16).</summary>
    public int BatchSize { get; set; } = 16;

    /// <summary>Random seed: equal seeds give equal icons on the CPU (default 0).</summary>
    public int Seed { get; set; }

    /// <summary>Adam learning rate (default 0.05).</summary>
    public double LearningRate { get; set; } = 0.05;

    /// <summary>Image basis (default <see cref="ImageBasis.Fourier"/>).</summary>
    public ImageBasis Basis { get; set; } = ImageBasis.Fourier;

    /// <summary>Whether colours are decorrelated with lucid's matrix (default true).</summary>
    public bool DecorrelateColors { get; set; } = true;

    /// <summary>Transformation robustness; null selects <see cref="RobustnessTransforms.Atlas"/> for <see cref="Size"/>.</summary>
    public IReadOnlyList<ImageTransform>? Transforms { get; set; }

    /// <summary>The objective's form (default the atlas' direction x cosine^n).</summary>
    public ObjectiveKind Objective { get; set; } = ObjectiveKind.DirectionCosine;

    /// <summary>n in max(floor, cos)^n (default 4).</summary>
    public double CosinePower { get; set; } = 4;

    /// <summary>The cosine floor (default 0.1).</summary>
    public double CosineFloor { get; set; } = 0.1;

    /// <summary>Optional whitening of the targets (see <see cref="Objectives.Whitening.Fit"/>).</summary>
    public Whitening? Whitening { get; set; }

    /// <summary>The layer position [y, x] whose activation is optimised; null for the centre (lucid: size / 2).</summary>
    public (int Y, int X)? Position { get; set; }

    /// <summary>
    /// Apply the objective to the layer's activation averaged over all positions instead of one position (lucid's
    /// <c>channel</c> and <c>direction</c> objectives); <see cref="Position"/> is then ignored (default false).
    /// </summary>
    public bool AveragePositions { get; set; }

    /// <summary>
    /// Compute the objective's seed inside the network's gradient graph when the model supports it
    /// (<see cref="Network.IObjectiveGradientModel"/>): one network run per step instead of two for the cosine objective
    /// (default true).
    /// </summary>
    public bool ObjectiveInGraph { get; set; } = true;

    internal void Validate()
    {
        static void Positive(int v, string name)
        {
            if (v < 1)
                throw new ArgumentOutOfRangeException(name, v, $"{name} must be at least 1.");
        }
        if (Size < 8)
            throw new ArgumentOutOfRangeException(nameof(Size), Size, "Size must be at least 8 pixels.");
        Positive(Steps, nameof(Steps));
        Positive(Attempts, nameof(Attempts));
        Positive(BatchSize, nameof(BatchSize));
        if (!(LearningRate > 0) || double.IsInfinity(LearningRate))
            throw new ArgumentOutOfRangeException(nameof(LearningRate), LearningRate, "LearningRate must be positive and finite.");
    }
}
