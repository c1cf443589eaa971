namespace Microsoft.ML.ActivationAtlas.Inversion;

/// <summary>One clean evaluation of an icon during its optimisation.</summary>
/// <param name="Attempt">The attempt (0-based).</param>
/// <param name="Step">Steps done in that attempt when it was evaluated.</param>
/// <param name="Objective">The clean (untransformed) objective.</param>
/// <param name="Fidelity">The cosine of the clean activation with the target direction.</param>
public readonly record struct IconEvaluation(int Attempt, int Step, double Objective, double Fidelity);

/// <summary>One optimised icon.</summary>
public sealed class RenderedIcon
{
    internal RenderedIcon(float[] pixels, int size, double fidelity, double objective, int attempt, float[] parameters,
        int bestStep, int stepsTaken, bool stoppedEarly, bool warmStarted, IReadOnlyList<IconEvaluation> evaluations, float[] activation)
    {
        Activation = activation;
        Pixels = pixels;
        Size = size;
        Fidelity = fidelity;
        Objective = objective;
        Attempt = attempt;
        Parameters = parameters;
        BestStep = bestStep;
        StepsTaken = stepsTaken;
        StoppedEarly = stoppedEarly;
        WarmStarted = warmStarted;
        Evaluations = evaluations;
    }

    /// <summary>Planar RGB in [0, 1], <c>[3, Size, Size]</c>.</summary>
    public float[] Pixels { get; }

    /// <summary>Side in pixels.</summary>
    public int Size { get; }

    /// <summary>Cosine between the layer activation of the untransformed icon at the objective position and the target.</summary>
    public double Fidelity { get; }

    /// <summary>
    /// The layer activation of the untransformed icon at the objective position (or averaged over positions), one value
    /// per channel: what <see cref="Fidelity"/> compares with the target, and what plausibility compares with real rows.
    /// </summary>
    public float[] Activation { get; }

    /// <summary>The objective of the untransformed icon (used to pick the best attempt and step).</summary>
    public double Objective { get; }

    /// <summary>Which attempt (0-based) produced this icon.</summary>
    public int Attempt { get; }

    /// <summary>
    /// The optimised parameters that give <see cref="Pixels"/> (for the Fourier basis, the unscaled half spectrum). Pass
    /// them as the warm start of a related icon of the same size and settings, e.g. a finer grid cell inside this one.
    /// </summary>
    public float[] Parameters { get; }

    /// <summary>The step (within <see cref="Attempt"/>) whose parameters were kept.</summary>
    public int BestStep { get; }

    /// <summary>Optimisation steps this icon cost, over all its attempts (its share of the icon-steps).</summary>
    public int StepsTaken { get; }

    /// <summary>Whether an attempt stopped before its step budget because its clean objective stopped improving.</summary>
    public bool StoppedEarly { get; }

    /// <summary>Whether the optimisation started from given parameters.</summary>
    public bool WarmStarted { get; }

    /// <summary>Every clean evaluation of every attempt, in order.</summary>
    public IReadOnlyList<IconEvaluation> Evaluations { get; }

    /// <summary>Interleaved 8-bit RGBA (alpha 255), row-major, for image libraries.</summary>
    public byte[] ToRgba()
    {
        int n = Size * Size;
        var rgba = new byte[4 * n];
        for (int p = 0; p < n; p++)
        {
            for (int c = 0; c < 3; c++)
                rgba[4 * p + c] = (byte)Math.Clamp((int)MathF.Round(Pixels[c * n + p] * 255f), 0, 255);
            rgba[4 * p + 3] = 255;
        }
        return rgba;
    }
}
