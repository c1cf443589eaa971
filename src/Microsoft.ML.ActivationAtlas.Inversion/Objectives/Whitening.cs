namespace Microsoft.ML.ActivationAtlas.Inversion.Objectives;

/// <summary>
/// Whitening computed once from collected activations. The objective compares <c>a' = L (a - mu)</c> with the
/// prepared target <c>t'</c>: for <see cref="WhiteningKind.SecondMomentInverse"/> L is the identity, mu = 0 and
/// t' = S v; for <see cref="WhiteningKind.Zca"/> L = W = C^-1/2 and t' = W (v - mu).
/// </summary>
public sealed class Whitening
{
    private readonly float[] _matrix; // row-major dims x dims (S or W)
    private readonly float[] _mean;   // zero for SecondMomentInverse

    private Whitening(WhiteningKind kind, int dimensions, float[] matrix, float[] mean)
    {
        Kind = kind;
        Dimensions = dimensions;
        _matrix = matrix;
        _mean = mean;
    }

    /// <summary>The kind of whitening.</summary>
    public WhiteningKind Kind { get; }

    /// <summary>Activation channels.</summary>
    public int Dimensions { get; }

    /// <summary>The matrix: S for <see cref="WhiteningKind.SecondMomentInverse"/>, W for <see cref="WhiteningKind.Zca"/> (row-major).</summary>
    public ReadOnlySpan<float> Matrix => _matrix;

    /// <summary>The mean subtracted before whitening (all zero for <see cref="WhiteningKind.SecondMomentInverse"/>).</summary>
    public ReadOnlySpan<float> Mean => _mean;

    /// <summary>Rebuilds a whitening from its stored matrix and mean (e.g. when loading a saved model).</summary>
    /// <param name="kind">The kind (not <see cref="WhiteningKind.None"/>).</param>
    /// <param name="dimensions">Activation channels.</param>
    /// <param name="matrix">The row-major matrix.</param>
    /// <param name="mean">The mean.</param>
    public static Whitening FromMatrix(WhiteningKind kind, int dimensions, float[] matrix, float[] mean)
    {
        ArgumentNullException.ThrowIfNull(matrix);
        ArgumentNullException.ThrowIfNull(mean);
        if (kind == WhiteningKind.None)
            throw new ArgumentException("A whitening needs a kind other than None.", nameof(kind));
        if (matrix.Length != dimensions * dimensions || mean.Length != dimensions)
            throw new ArgumentException($"A whitening of {dimensions} dimensions needs a {dimensions}x{dimensions} matrix and a mean of {dimensions}.", nameof(matrix));
        return new Whitening(kind, dimensions, matrix, mean);
    }

    /// <summary>Computes the whitening from activation vectors.</summary>
    /// <param name="activations">Row-major <c>[count, dimensions]</c>.</param>
    /// <param name="dimensions">Channels per vector.</param>
    /// <param name="kind">Which whitening.</param>
    /// <param name="ridge">Added to the diagonal, relative to the mean diagonal, so that dead channels stay invertible.</param>
    public static Whitening Fit(ReadOnlySpan<float> activations, int dimensions, WhiteningKind kind, double ridge = 1e-3)
    {
        if (kind == WhiteningKind.None)
            throw new ArgumentException("Fit needs a whitening kind other than None.", nameof(kind));
        if (dimensions < 1 || activations.Length % dimensions != 0 || activations.Length == 0)
            throw new ArgumentException($"Activations must be a non-empty [count, {dimensions}] array; got {activations.Length} floats.", nameof(activations));
        if (!(ridge >= 0))
            throw new ArgumentOutOfRangeException(nameof(ridge), "The ridge must not be negative.");
        int n = activations.Length / dimensions, d = dimensions;
        var mean = new double[d];
        if (kind == WhiteningKind.Zca)
        {
            for (int i = 0; i < n; i++)
                for (int j = 0; j < d; j++)
                    mean[j] += activations[i * d + j];
            for (int j = 0; j < d; j++)
                mean[j] /= n;
        }
        var m = new double[d * d];
        var row = new double[d];
        for (int i = 0; i < n; i++)
        {
            for (int j = 0; j < d; j++)
            {
                float v = activations[i * d + j];
                if (!float.IsFinite(v))
                    throw new ArgumentException($"Activation row {i} has a non-finite value in channel {j}.", nameof(activations));
                row[j] = v - mean[j];
            }
            for (int a = 0; a < d; a++)
            {
                double ra = row[a];
                if (ra == 0)
                    continue;
                int o = a * d;
                for (int b = a; b < d; b++)
                    m[o + b] += ra * row[b];
            }
        }
        double trace = 0;
        for (int a = 0; a < d; a++)
        {
            for (int b = a; b < d; b++)
            {
                m[a * d + b] /= n;
                m[b * d + a] = m[a * d + b];
            }
            trace += m[a * d + a];
        }
        double lambda = ridge * Math.Max(trace / d, 1e-12);
        for (int a = 0; a < d; a++)
            m[a * d + a] += lambda;

        double[] result = kind == WhiteningKind.SecondMomentInverse ? SymmetricMatrix.Inverse(m, d) : SymmetricMatrix.InverseSquareRoot(m, d);
        return new Whitening(kind, d, result.Select(v => (float)v).ToArray(), mean.Select(v => (float)v).ToArray());
    }

    /// <summary>a' = L (a - mu). For <see cref="WhiteningKind.SecondMomentInverse"/> this is a copy.</summary>
    public void TransformActivation(ReadOnlySpan<float> activation, Span<float> output, Span<float> scratch)
    {
        if (Kind == WhiteningKind.SecondMomentInverse)
        {
            activation[..Dimensions].CopyTo(output);
            return;
        }
        System.Numerics.Tensors.TensorPrimitives.Subtract(activation[..Dimensions], _mean, scratch[..Dimensions]);
        MatVec(scratch[..Dimensions], output);
    }

    /// <summary>Maps a gradient with respect to a' back to a: L^T g (L symmetric).</summary>
    public void TransposeGradient(ReadOnlySpan<float> gradient, Span<float> output)
    {
        if (Kind == WhiteningKind.SecondMomentInverse)
        {
            gradient[..Dimensions].CopyTo(output);
            return;
        }
        MatVec(gradient, output);
    }

    /// <summary>The prepared target t': S v, or W (v - mu).</summary>
    public void TransformTarget(ReadOnlySpan<float> direction, Span<float> output)
    {
        if (Kind == WhiteningKind.SecondMomentInverse)
        {
            MatVec(direction, output);
            return;
        }
        var centred = new float[Dimensions];
        System.Numerics.Tensors.TensorPrimitives.Subtract(direction[..Dimensions], _mean, centred);
        MatVec(centred, output);
    }

    private void MatVec(ReadOnlySpan<float> x, Span<float> y)
    {
        int d = Dimensions;
        for (int i = 0; i < d; i++)
            y[i] = System.Numerics.Tensors.TensorPrimitives.Dot(_matrix.AsSpan(i * d, d), x[..d]);
    }
}
