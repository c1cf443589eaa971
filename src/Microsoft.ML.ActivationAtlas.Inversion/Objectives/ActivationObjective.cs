using System.Numerics.Tensors;

namespace Microsoft.ML.ActivationAtlas.Inversion.Objectives;

/// <summary>
/// The objective of one icon, evaluated in C# on the activation vector at the objective position, with its gradient
/// with respect to that vector (which becomes the seed of the network's vector-Jacobian product).
/// </summary>
public sealed class ActivationObjective
{
    private const double CosineEpsilon = 1e-4;

    /// <summary>Creates the objective.</summary>
    /// <param name="channels">Activation channels at the layer.</param>
    /// <param name="kind">Direction or the atlas' direction x cosine^n.</param>
    /// <param name="cosinePower">n in max(floor, cos)^n.</param>
    /// <param name="cosineFloor">The floor under the cosine.</param>
    /// <param name="whitening">Optional whitening (fitted on the same layer's activations).</param>
    public ActivationObjective(int channels, ObjectiveKind kind = ObjectiveKind.DirectionCosine, double cosinePower = 4, double cosineFloor = 0.1, Whitening? whitening = null)
    {
        if (channels < 1)
            throw new ArgumentOutOfRangeException(nameof(channels), "The layer must have at least one channel.");
        if (!(cosinePower >= 0) || double.IsInfinity(cosinePower))
            throw new ArgumentOutOfRangeException(nameof(cosinePower), "The cosine power must be a finite number >= 0.");
        if (!(cosineFloor > 0 && cosineFloor < 1))
            throw new ArgumentOutOfRangeException(nameof(cosineFloor), "The cosine floor must lie in (0, 1).");
        if (whitening is not null && whitening.Dimensions != channels)
            throw new ArgumentException($"The whitening has {whitening.Dimensions} dimensions but the layer has {channels} channels.", nameof(whitening));
        Channels = channels;
        Kind = kind;
        CosinePower = cosinePower;
        CosineFloor = cosineFloor;
        Whitening = whitening;
    }

    /// <summary>Activation channels.</summary>
    public int Channels { get; }

    /// <summary>The objective's form.</summary>
    public ObjectiveKind Kind { get; }

    /// <summary>n in max(floor, cos)^n.</summary>
    public double CosinePower { get; }

    /// <summary>The floor under the cosine.</summary>
    public double CosineFloor { get; }

    /// <summary>Optional whitening.</summary>
    public Whitening? Whitening { get; }

    /// <summary>
    /// A user's objective that replaces the built-in form (see <see cref="IconRenderOptions.CustomObjective"/>), or null.
    /// </summary>
    public IconObjective? Custom { get; init; }

    /// <summary>True when the gradient does not depend on the activation (plain direction), so one VJP pass per step suffices.</summary>
    public bool IsLinear => Custom is null && Kind == ObjectiveKind.Direction;

    /// <summary>Checks a target direction and maps it into the objective's space (t' = S v, W (v - mu) or v).</summary>
    /// <param name="direction">The target direction.</param>
    /// <param name="prepared">Receives t' (length <see cref="Channels"/>).</param>
    /// <param name="name">How to name the direction in error messages.</param>
    public void PrepareTarget(ReadOnlySpan<float> direction, Span<float> prepared, string name = "direction")
    {
        Validate(direction, Channels, name);
        if (Whitening is null)
            direction.CopyTo(prepared);
        else
            Whitening.TransformTarget(direction, prepared);
        if (TensorPrimitives.Norm(prepared[..Channels]) == 0)
            throw new ArgumentException($"The {name} becomes the zero vector after whitening.", name);
    }

    /// <summary>Throws a clear error when a direction has the wrong length, a non-finite value or zero norm.</summary>
    /// <param name="direction">The direction.</param>
    /// <param name="channels">The expected length.</param>
    /// <param name="name">How to name the direction in the message.</param>
    public static void Validate(ReadOnlySpan<float> direction, int channels, string name = "direction")
    {
        if (direction.Length != channels)
            throw new ArgumentException($"The {name} has {direction.Length} values but the layer has {channels} channels.", name);
        for (int i = 0; i < direction.Length; i++)
            if (!float.IsFinite(direction[i]))
                throw new ArgumentException($"The {name} has a non-finite value ({direction[i]}) at channel {i}.", name);
        if (TensorPrimitives.Norm(direction) == 0)
            throw new ArgumentException($"The {name} is the zero vector; it has no direction to visualise.", name);
    }

    /// <summary>
    /// Evaluates the objective for activation <paramref name="activation"/> and writes d(objective)/d(activation)
    /// into <paramref name="gradient"/> (may be null-length to skip). <paramref name="scratch"/> needs 2 x channels.
    /// </summary>
    public double Evaluate(ReadOnlySpan<float> activation, ReadOnlySpan<float> preparedTarget, Span<float> gradient, Span<float> scratch)
    {
        int c = Channels;
        Span<float> a = scratch[..c];
        Span<float> g = scratch.Slice(c, c);
        if (Custom is not null)
        {
            double custom = Custom.Evaluate(activation[..c], preparedTarget[..c], g);
            if (gradient.Length > 0)
                g.CopyTo(gradient);
            return custom;
        }
        if (Whitening is { Kind: WhiteningKind.Zca })
            Whitening.TransformActivation(activation, a, g);
        else
            activation[..c].CopyTo(a);
        ReadOnlySpan<float> t = preparedTarget[..c];
        double dot = TensorPrimitives.Dot(a, t);
        double value;
        if (Kind == ObjectiveKind.Direction)
        {
            value = dot;
            t.CopyTo(g);
        }
        else
        {
            double na = TensorPrimitives.Norm(a), nt = TensorPrimitives.Norm(t);
            double den = na * nt + CosineEpsilon;
            double cos = dot / den;
            double n = CosinePower;
            if (cos > CosineFloor)
            {
                double cn = Math.Pow(cos, n);
                value = dot * cn;
                // d/da [dot cos^n] = cos^n t + n dot cos^(n-1) (t / den - dot nt a / (na den^2))
                double k = n * dot * Math.Pow(cos, n - 1);
                float ct = (float)(cn + k / den);
                float ca = na > 0 ? (float)(-k * dot * nt / (na * den * den)) : 0f;
                TensorPrimitives.Multiply(t, ct, g);
                TensorPrimitives.MultiplyAdd(a, ca, g, g);
            }
            else
            {
                double fn = Math.Pow(CosineFloor, n);
                value = dot * fn;
                TensorPrimitives.Multiply(t, (float)fn, g);
            }
        }
        if (gradient.Length > 0)
        {
            if (Whitening is { Kind: WhiteningKind.Zca })
                Whitening.TransposeGradient(g, gradient);
            else
                g.CopyTo(gradient);
        }
        return value;
    }

    /// <summary>The cosine between an activation and the (un-whitened) target: the icon's fidelity.</summary>
    public static double Cosine(ReadOnlySpan<float> activation, ReadOnlySpan<float> direction)
    {
        double na = TensorPrimitives.Norm(activation), nd = TensorPrimitives.Norm(direction);
        return na == 0 || nd == 0 ? 0 : TensorPrimitives.Dot(activation, direction) / (na * nd);
    }
}
