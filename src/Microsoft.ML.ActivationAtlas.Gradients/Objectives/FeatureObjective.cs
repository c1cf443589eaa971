using Microsoft.ML.ActivationAtlas.Gradients.Internal;

namespace Microsoft.ML.ActivationAtlas.Gradients;

/// <summary>
/// A feature-visualisation objective on a [N,C,H,W] (or [N,C] for <see cref="Channel"/>) tensor, written into a
/// reverse-mode graph so that one run returns the objective's value per example and its gradient.
/// Create one with the factory methods.
/// </summary>
public abstract class FeatureObjective
{
    private protected FeatureObjective()
    {
    }

    /// <summary>Emits the nodes computing the objective ([N]) from <paramref name="tensor"/>; returns its name.</summary>
    internal abstract string Emit(GraphEmitter g, string tensor);

    /// <summary>Mean activation of one channel over all positions.</summary>
    /// <param name="channel">The channel index (axis 1).</param>
    public static FeatureObjective Channel(int channel) => new ChannelObjective(channel);

    /// <summary>Activation of one channel at one position.</summary>
    /// <param name="channel">The channel index (axis 1).</param>
    /// <param name="y">The row (axis 2).</param>
    /// <param name="x">The column (axis 3).</param>
    public static FeatureObjective Neuron(int channel, int y, int x) => new NeuronObjective(channel, y, x);

    /// <summary>Dot product of the activation vectors with a direction, averaged over positions.</summary>
    /// <param name="direction">The direction, one value per channel.</param>
    /// <param name="whitening">
    /// Optional [C,C] row-major matrix S; the direction used is direction x S (for example an inverse covariance
    /// square root, to whiten). Null for none.
    /// </param>
    public static FeatureObjective Direction(float[] direction, float[]? whitening = null)
        => new DirectionObjective(Whiten(direction, whitening));

    /// <summary>
    /// The activation-atlas objective at one position: dot(h, v) x max(cos(h, v), floor)^power, where h is the
    /// activation vector at (y, x) and v the (optionally whitened) direction.
    /// </summary>
    /// <param name="direction">The direction v, one value per channel.</param>
    /// <param name="cosinePower">The exponent n of the cosine. Default 1 (0 gives the plain dot product).</param>
    /// <param name="cosineFloor">Lower bound of the cosine before the power, so the objective keeps a useful sign. Default 0.1.</param>
    /// <param name="y">Row of the position; null for the middle row.</param>
    /// <param name="x">Column of the position; null for the middle column.</param>
    /// <param name="whitening">Optional [C,C] row-major matrix S applied as direction x S; null for none.</param>
    public static FeatureObjective DirectionCosine(float[] direction, float cosinePower = 1f, float cosineFloor = 0.1f,
        int? y = null, int? x = null, float[]? whitening = null)
        => new DirectionCosineObjective(Whiten(direction, whitening), cosinePower, cosineFloor, y, x);

    private static float[] Whiten(float[] direction, float[]? whitening)
    {
        ArgumentNullException.ThrowIfNull(direction);
        if (direction.Length == 0)
            throw new ArgumentException("The direction is empty.", nameof(direction));
        if (whitening is null)
            return (float[])direction.Clone();
        int c = direction.Length;
        if (whitening.Length != c * c)
            throw new ArgumentException($"The whitening matrix has {whitening.Length} values; a {c}x{c} matrix has {c * c}.", nameof(whitening));
        var result = new float[c];
        for (int i = 0; i < c; i++)
        {
            float vi = direction[i];
            if (vi == 0f) continue;
            for (int j = 0; j < c; j++)
                result[j] += vi * whitening[i * c + j];
        }
        return result;
    }
}
