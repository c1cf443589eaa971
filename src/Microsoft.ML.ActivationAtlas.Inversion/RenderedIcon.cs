namespace Microsoft.ML.ActivationAtlas.Inversion;

/// <summary>One optimised icon.</summary>
public sealed class RenderedIcon
{
    internal RenderedIcon(float[] pixels, int size, double fidelity, double objective, int attempt)
    {
        Pixels = pixels;
        Size = size;
        Fidelity = fidelity;
        Objective = objective;
        Attempt = attempt;
    }

    /// <summary>Planar RGB in [0, 1], <c>[3, Size, Size]</c>.</summary>
    public float[] Pixels { get; }

    /// <summary>Side in pixels.</summary>
    public int Size { get; }

    /// <summary>Cosine between the layer activation of the untransformed icon at the objective position and the target.</summary>
    public double Fidelity { get; }

    /// <summary>The objective of the untransformed icon (used to pick the best attempt).</summary>
    public double Objective { get; }

    /// <summary>Which attempt (0-based) produced this icon.</summary>
    public int Attempt { get; }

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
