using System.Numerics.Tensors;

namespace Microsoft.ML.ActivationAtlas.Inversion.Objectives;

/// <summary>
/// An objective of one icon written outside the library, in the manner of lucid's composable objectives: a function of
/// the activation vector at the objective position (and the icon's target direction) with its gradient. Objectives add
/// and scale (<c>a + 0.5 * b</c>); <see cref="Atlas"/> and <see cref="Direction"/> are the built-in forms as parts.
/// Set one as <see cref="IconRenderOptions.CustomObjective"/>; it is evaluated on the CPU between the network's forward
/// and backward passes, so it costs one more round trip per step than the built-in objective, which the gradient graph
/// evaluates itself.
/// </summary>
public abstract class IconObjective
{
    /// <summary>
    /// The objective's value for <paramref name="activation"/>, with d(value)/d(activation) written into
    /// <paramref name="gradient"/> (as long as the activation).
    /// </summary>
    /// <param name="activation">The activation vector at the objective position (the layer's channels).</param>
    /// <param name="target">The icon's target direction (the direction given to the renderer).</param>
    /// <param name="gradient">Receives the gradient; overwrite every value.</param>
    public abstract double Evaluate(ReadOnlySpan<float> activation, ReadOnlySpan<float> target, Span<float> gradient);

    /// <summary>lucid's <c>direction_neuron</c>: the dot product of the activation and the target.</summary>
    public static IconObjective Direction { get; } = new DotObjective();

    /// <summary>The activation atlas objective, dot x max(floor, cos)^power (defaults 4 and 0.1), as a part.</summary>
    /// <param name="power">The cosine's power.</param>
    /// <param name="floor">The floor under the cosine, in (0, 1).</param>
    public static IconObjective Atlas(double power = 4, double floor = 0.1) => new AtlasObjective(power, floor);

    /// <summary>The sum of two objectives.</summary>
    /// <param name="a">The first.</param>
    /// <param name="b">The second.</param>
    public static IconObjective operator +(IconObjective a, IconObjective b)
    {
        ArgumentNullException.ThrowIfNull(a);
        ArgumentNullException.ThrowIfNull(b);
        return new SumObjective(a, b);
    }

    /// <summary>An objective scaled by a weight.</summary>
    /// <param name="weight">The weight (finite).</param>
    /// <param name="objective">The objective.</param>
    public static IconObjective operator *(double weight, IconObjective objective)
    {
        ArgumentNullException.ThrowIfNull(objective);
        if (!double.IsFinite(weight))
            throw new ArgumentOutOfRangeException(nameof(weight), "An objective's weight must be finite.");
        return new ScaledObjective(weight, objective);
    }

    /// <summary>The difference of two objectives.</summary>
    /// <param name="a">The first.</param>
    /// <param name="b">The one subtracted.</param>
    public static IconObjective operator -(IconObjective a, IconObjective b) => a + (-1.0 * b);

    private sealed class DotObjective : IconObjective
    {
        public override double Evaluate(ReadOnlySpan<float> activation, ReadOnlySpan<float> target, Span<float> gradient)
        {
            target.CopyTo(gradient);
            return TensorPrimitives.Dot(activation, target);
        }
    }

    private sealed class AtlasObjective : IconObjective
    {
        public AtlasObjective(double power, double floor)
        {
            // Checked here, with the built-in's own messages; the channel count is the activation's at evaluation.
            _ = new ActivationObjective(1, ObjectiveKind.DirectionCosine, power, floor);
            Power = power;
            Floor = floor;
        }

        public double Power { get; }

        public double Floor { get; }

        private ActivationObjective? _builtIn;

        public override double Evaluate(ReadOnlySpan<float> activation, ReadOnlySpan<float> target, Span<float> gradient)
        {
            // The built-in form's formula and gradient, one place for both (scratch on the stack for typical layers).
            var objective = _builtIn;
            if (objective is null || objective.Channels != activation.Length)
                _builtIn = objective = new ActivationObjective(activation.Length, ObjectiveKind.DirectionCosine, Power, Floor);
            Span<float> scratch = activation.Length <= 2048 ? stackalloc float[2 * activation.Length] : new float[2 * activation.Length];
            return objective.Evaluate(activation, target, gradient, scratch);
        }
    }

    private sealed class SumObjective(IconObjective a, IconObjective b) : IconObjective
    {
        public override double Evaluate(ReadOnlySpan<float> activation, ReadOnlySpan<float> target, Span<float> gradient)
        {
            double value = a.Evaluate(activation, target, gradient);
            Span<float> other = activation.Length <= 2048 ? stackalloc float[activation.Length] : new float[activation.Length];
            value += b.Evaluate(activation, target, other);
            TensorPrimitives.Add(gradient, other, gradient);
            return value;
        }
    }

    private sealed class ScaledObjective(double weight, IconObjective objective) : IconObjective
    {
        public override double Evaluate(ReadOnlySpan<float> activation, ReadOnlySpan<float> target, Span<float> gradient)
        {
            double value = objective.Evaluate(activation, target, gradient);
            TensorPrimitives.Multiply(gradient, (float)weight, gradient);
            return weight * value;
        }
    }
}
