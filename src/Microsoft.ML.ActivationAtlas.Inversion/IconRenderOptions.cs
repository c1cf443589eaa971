using Microsoft.ML.ActivationAtlas.Inversion.Objectives;
using Microsoft.ML.ActivationAtlas.Inversion.Optimization;
using Microsoft.ML.ActivationAtlas.Inversion.Parameterization;
using Microsoft.ML.ActivationAtlas.Inversion.Transforms;

namespace Microsoft.ML.ActivationAtlas.Inversion;

/// <summary>
/// Settings of <see cref="IconRenderer"/>. The objective, parameterisation and transformation robustness follow the
/// activation atlas article; the optimiser's and transforms' defaults (Adam at 0.2 with cosine decay, lucid's standard transformation robustness, 128 steps) reach in a quarter of the
/// icon-steps the fidelity that lucid's settings (Adam 0.05, constant, 512 steps x 2 attempts) reach: on 32 ResNet18 CIFAR-10 atlas cells of a 10x10 and a 20x20 grid, a median fidelity of 0.84 at 128 steps, against 0.67 for lucid's 512 x 2
/// (the <c>icon-steps</c> benchmark).
/// </summary>
public sealed class IconRenderOptions
{
    /// <summary>The defaults that the icon stages, the atlas builder and the single-image grid share.</summary>
    public static class Defaults
    {
        /// <summary>Icon side in pixels: 80.</summary>
        public const int Size = 80;

        /// <summary>Adam steps per attempt: 128.</summary>
        public const int Steps = 128;
    }

    /// <summary>Icon side in pixels (default <see cref="Defaults.Size"/>).</summary>
    public int Size { get; set; } = Defaults.Size;

    /// <summary>
    /// Adam steps per attempt (default <see cref="Defaults.Steps"/>). 0 keeps the initial parameters (the untrained parameterisation, one clean
    /// evaluation): the baseline an optimised icon should beat.
    /// </summary>
    public int Steps { get; set; } = Defaults.Steps;

    /// <summary>
    /// Independent attempts per icon; the one with the best clean objective is kept (default 1: on ResNet18 CIFAR-10
    /// atlas cells a second attempt of 512 steps left the median fidelity unchanged at twice the cost; lucid used 2).
    /// </summary>
    public int Attempts { get; set; } = 1;

    /// <summary>Icons optimised together in one network batch (default 16).</summary>
    public int BatchSize { get; set; } = 16;

    /// <summary>Random seed: equal seeds give equal icons on the CPU (default 0).</summary>
    public int Seed { get; set; }

    /// <summary>Adam learning rate at the first step (default 0.2; lucid used 0.05 throughout).</summary>
    public double LearningRate { get; set; } = 0.2;

    /// <summary>
    /// How the learning rate changes over an icon's steps (default <see cref="Optimization.LearningRateSchedule.Cosine"/>:
    /// large early steps, small late ones; lucid kept it constant).
    /// </summary>
    public LearningRateSchedule LearningRateSchedule { get; set; } = LearningRateSchedule.Cosine;

    /// <summary>
    /// With <see cref="Optimization.LearningRateSchedule.Cosine"/>: the learning rate at the last step as a fraction of
    /// <see cref="LearningRate"/> (default 0.1).
    /// </summary>
    public double FinalLearningRateFraction { get; set; } = 0.1;

    /// <summary>
    /// Every this many steps of an icon its untransformed ("clean") objective is evaluated (one forward pass), and the
    /// parameters with the best clean objective so far are the ones kept (default 32). The last step is always evaluated.
    /// </summary>
    public int EvaluationInterval { get; set; } = 32;

    /// <summary>
    /// Stop an icon early after this many clean evaluations in a row that do not improve its best clean objective by
    /// <see cref="EarlyStoppingTolerance"/>; its batch slot goes to the next icon. 0 disables early stopping (default 0).
    /// </summary>
    public int EarlyStoppingPatience { get; set; }

    /// <summary>The relative improvement of the clean objective that counts as progress for early stopping (default 0.01).</summary>
    public double EarlyStoppingTolerance { get; set; } = 0.01;

    /// <summary>
    /// Steps of an icon whose optimisation starts from given parameters (a warm start, e.g. the optimised parameters
    /// of a coarser grid's parent cell; see <see cref="RenderedIcon.Parameters"/>). Warm-started icons run one attempt.
    /// Null uses a quarter of <see cref="Steps"/> (default null).
    /// </summary>
    public int? WarmStartSteps { get; set; }

    /// <summary>Image basis (default <see cref="ImageBasis.Fourier"/>).</summary>
    public ImageBasis Basis { get; set; } = ImageBasis.Fourier;

    /// <summary>
    /// The fixed amplitude spectrum of <see cref="ImageBasis.Maco"/>, <c>[3, Size, Size/2 + 1]</c> (from
    /// <see cref="MacoImageParameterization.MeanAmplitude"/> of natural images, e.g. the atlas's own); required for MACO,
    /// ignored otherwise (default null).
    /// </summary>
    public float[]? MacoMagnitude { get; set; }

    /// <summary>Whether colours are decorrelated with lucid's matrix (default true).</summary>
    public bool DecorrelateColors { get; set; } = true;

    /// <summary>
    /// Transformation robustness; null selects <see cref="RobustnessTransforms.For"/> the layer: lucid's standard
    /// transforms for <see cref="Size"/> on a convolutional layer, shifts by whole patches on a vision transformer's
    /// token layer (default null). The article's stronger <see cref="RobustnessTransforms.Atlas"/> list needs about four times the
    /// steps for the same fidelity, and its icons were less plausible and agreed less with the cells' images.
    /// </summary>
    public IReadOnlyList<ImageTransform>? Transforms { get; set; }

    /// <summary>The objective's form (default the atlas' direction x cosine^n).</summary>
    public ObjectiveKind Objective { get; set; } = ObjectiveKind.DirectionCosine;

    /// <summary>
    /// An objective of your own, e.g. <c>IconObjective.Atlas() + 0.1 * new MySmoothness()</c>: replaces
    /// <see cref="Objective"/>, <see cref="CosinePower"/> and <see cref="CosineFloor"/> and is evaluated on the CPU each
    /// step (the target it sees is whitened when <see cref="Whitening"/> is set). Default null: the built-in objective.
    /// </summary>
    public IconObjective? CustomObjective { get; set; }

    /// <summary>n in max(floor, cos)^n (default 4).</summary>
    public double CosinePower { get; set; } = 4;

    /// <summary>The cosine floor (default 0.1).</summary>
    public double CosineFloor { get; set; } = 0.1;

    /// <summary>Optional whitening of the targets (see <see cref="Objectives.Whitening.Fit"/>).</summary>
    public Whitening? Whitening { get; set; }

    /// <summary>
    /// The layer position [y, x] whose activation is optimised (in a token layer, the patch grid's cell); null for the
    /// centre (lucid: size / 2).
    /// </summary>
    public (int Y, int X)? Position { get; set; }

    /// <summary>
    /// For a vision transformer's token layer (<see cref="Network.ILayerGradientModel.Tokens"/>): the index of the token
    /// whose activation is optimised, replacing <see cref="Position"/>. Tokens are counted as the layer holds them: with
    /// <see cref="Onnx.TokenLayout.Default"/> token 0 is the class token and patch (y, x) is token 1 + y * width + x.
    /// Default null: the patch token at <see cref="Position"/> (the centre patch).
    /// </summary>
    public int? Token { get; set; }

    /// <summary>The <see cref="Token"/> of a class token with the usual layouts (<see cref="Onnx.TokenLayout.Default"/>): 0.</summary>
    public const int ClassToken = 0;

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

    /// <summary>
    /// Where each step's gradient is computed (default <see cref="IconStepPath.Auto"/>: the whole step as one ONNX graph
    /// when the model runs on CUDA, so that images do not cross to the host every step; the C# image side otherwise).
    /// Both paths draw the same transforms from the same seed and give the same icons within float rounding.
    /// </summary>
    public IconStepPath StepPath { get; set; } = IconStepPath.Auto;

    /// <summary>The steps of a warm-started icon.</summary>
    internal int WarmSteps => WarmStartSteps ?? Math.Max(1, Steps / 4);

    internal void Validate()
    {
        static void Positive(int v, string name)
        {
            if (v < 1)
                throw new ArgumentOutOfRangeException(name, v, $"{name} must be at least 1.");
        }
        if (Size < 8)
            throw new ArgumentOutOfRangeException(nameof(Size), Size, "Size must be at least 8 pixels.");
        if (Steps < 0)
            throw new ArgumentOutOfRangeException(nameof(Steps), Steps, "Steps must be 0 (the initial parameters) or more.");
        Positive(Attempts, nameof(Attempts));
        Positive(BatchSize, nameof(BatchSize));
        if (!(LearningRate > 0) || double.IsInfinity(LearningRate))
            throw new ArgumentOutOfRangeException(nameof(LearningRate), LearningRate, "LearningRate must be positive and finite.");
        if (!Enum.IsDefined(LearningRateSchedule))
            throw new ArgumentOutOfRangeException(nameof(LearningRateSchedule), LearningRateSchedule, "Unknown learning-rate schedule.");
        if (!(FinalLearningRateFraction > 0 && FinalLearningRateFraction <= 1))
            throw new ArgumentOutOfRangeException(nameof(FinalLearningRateFraction), FinalLearningRateFraction, "FinalLearningRateFraction must lie in (0, 1].");
        Positive(EvaluationInterval, nameof(EvaluationInterval));
        if (Basis == ImageBasis.Maco && MacoMagnitude is null)
            throw new ArgumentException("Basis is Maco: set MacoMagnitude (MacoImageParameterization.MeanAmplitude of natural images at the icon size).", nameof(MacoMagnitude));
        if (EarlyStoppingPatience < 0)
            throw new ArgumentOutOfRangeException(nameof(EarlyStoppingPatience), EarlyStoppingPatience, "EarlyStoppingPatience must be 0 (off) or more.");
        if (!(EarlyStoppingTolerance >= 0) || double.IsInfinity(EarlyStoppingTolerance))
            throw new ArgumentOutOfRangeException(nameof(EarlyStoppingTolerance), EarlyStoppingTolerance, "EarlyStoppingTolerance must be a finite number >= 0.");
        if (!Enum.IsDefined(StepPath))
            throw new ArgumentOutOfRangeException(nameof(StepPath), StepPath, "Unknown step path.");
        if (WarmStartSteps is { } warm)
            Positive(warm, nameof(WarmStartSteps));
    }
}
