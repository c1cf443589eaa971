using System.Numerics;

namespace Microsoft.ML.ActivationAtlas.Inversion.Optimization;

/// <summary>
/// Adam as in TensorFlow 1 (<c>tf.train.AdamOptimizer</c>, which lucid uses): bias correction folded into the step
/// size, epsilon added to sqrt(v). Minimises: call <see cref="Step(Span{float}, ReadOnlySpan{float})"/> with the gradient of the loss.
/// </summary>
internal sealed class AdamOptimizer
{
    private readonly float[] _m;
    private readonly float[] _v;
    private int _t;

    /// <summary>Creates the state for <paramref name="parameterCount"/> parameters.</summary>
    /// <param name="parameterCount">Number of parameters.</param>
    /// <param name="learningRate">Step size (lucid: 0.05).</param>
    /// <param name="beta1">First-moment decay.</param>
    /// <param name="beta2">Second-moment decay.</param>
    /// <param name="epsilon">Added to sqrt(v).</param>
    public AdamOptimizer(int parameterCount, double learningRate = 0.05, double beta1 = 0.9, double beta2 = 0.999, double epsilon = 1e-8)
    {
        if (!(learningRate > 0) || double.IsInfinity(learningRate))
            throw new ArgumentOutOfRangeException(nameof(learningRate), "The learning rate must be positive and finite.");
        _m = new float[parameterCount];
        _v = new float[parameterCount];
        LearningRate = learningRate;
        Beta1 = beta1;
        Beta2 = beta2;
        Epsilon = epsilon;
    }

    /// <summary>Step size.</summary>
    public double LearningRate { get; }

    /// <summary>First-moment decay.</summary>
    public double Beta1 { get; }

    /// <summary>Second-moment decay.</summary>
    public double Beta2 { get; }

    /// <summary>Added to sqrt(v).</summary>
    public double Epsilon { get; }

    /// <summary>Clears the moments and the step count.</summary>
    public void Reset()
    {
        Array.Clear(_m);
        Array.Clear(_v);
        _t = 0;
    }

    /// <summary>One update: parameters -= lr_t m / (sqrt(v) + eps).</summary>
    public void Step(Span<float> parameters, ReadOnlySpan<float> gradient) => Step(parameters, gradient, LearningRate);

    /// <summary>One update with the step size <paramref name="learningRate"/> instead of <see cref="LearningRate"/> (for schedules).</summary>
    public void Step(Span<float> parameters, ReadOnlySpan<float> gradient, double learningRate)
    {
        _t++;
        float b1 = (float)Beta1, b2 = (float)Beta2, eps = (float)Epsilon;
        float lr = (float)(learningRate * Math.Sqrt(1 - Math.Pow(Beta2, _t)) / (1 - Math.Pow(Beta1, _t)));
        var m = _m.AsSpan(0, parameters.Length);
        var v = _v.AsSpan(0, parameters.Length);
        ReadOnlySpan<float> g = gradient[..parameters.Length];
        int i = 0;
        if (Vector.IsHardwareAccelerated)
        {
            // The same operations in the same order as the scalar loop, so the values are identical.
            Vector<float> vb1 = new(b1), vb2 = new(b2), va1 = new(1 - b1), va2 = new(1 - b2), veps = new(eps), vlr = new(lr);
            for (; i + Vector<float>.Count <= parameters.Length; i += Vector<float>.Count)
            {
                var gi = new Vector<float>(g[i..]);
                var mi = vb1 * new Vector<float>(m[i..]) + va1 * gi;
                var vi = vb2 * new Vector<float>(v[i..]) + va2 * gi * gi;
                mi.CopyTo(m[i..]);
                vi.CopyTo(v[i..]);
                (new Vector<float>(parameters[i..]) - vlr * mi / (Vector.SquareRoot(vi) + veps)).CopyTo(parameters[i..]);
            }
        }
        for (; i < parameters.Length; i++)
        {
            float gi = g[i];
            m[i] = b1 * m[i] + (1 - b1) * gi;
            v[i] = b2 * v[i] + (1 - b2) * gi * gi;
            parameters[i] -= lr * m[i] / (MathF.Sqrt(v[i]) + eps);
        }
    }
}
