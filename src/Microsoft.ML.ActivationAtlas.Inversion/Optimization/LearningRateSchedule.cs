namespace Microsoft.ML.ActivationAtlas.Inversion.Optimization;

/// <summary>How Adam's learning rate changes over an icon's steps.</summary>
public enum LearningRateSchedule
{
    /// <summary>The same learning rate at every step (lucid).</summary>
    Constant,

    /// <summary>Cosine decay from the learning rate at the first step to a fraction of it at the last.</summary>
    Cosine,
}

/// <summary>Evaluates a <see cref="LearningRateSchedule"/>.</summary>
internal static class LearningRateSchedules
{
    /// <summary>The learning rate of step <paramref name="step"/> (0-based) of <paramref name="steps"/>.</summary>
    public static double At(LearningRateSchedule schedule, double learningRate, double finalFraction, int step, int steps)
    {
        if (schedule == LearningRateSchedule.Constant || steps <= 1)
            return learningRate;
        double t = Math.Clamp(step / (double)(steps - 1), 0, 1);
        return learningRate * (finalFraction + (1 - finalFraction) * 0.5 * (1 + Math.Cos(Math.PI * t)));
    }
}
