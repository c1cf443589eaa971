namespace Microsoft.ML.ActivationAtlas.Inversion.Parameterization;

/// <summary>Seeded normal draws (Box-Muller), so that runs are reproducible per seed.</summary>
internal static class Gaussian
{
    public static void Fill(Span<float> values, Random random, float std)
    {
        for (int i = 0; i < values.Length; i += 2)
        {
            double u1 = 1.0 - random.NextDouble(), u2 = random.NextDouble();
            double r = Math.Sqrt(-2.0 * Math.Log(u1)) * std, t = 2 * Math.PI * u2;
            values[i] = (float)(r * Math.Cos(t));
            if (i + 1 < values.Length)
                values[i + 1] = (float)(r * Math.Sin(t));
        }
    }
}
