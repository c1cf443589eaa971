using Microsoft.ML.ActivationAtlas.Inversion.Optimization;

namespace Microsoft.ML.ActivationAtlas.Tests.Inversion;

public sealed class AdamOptimizerTests
{
    [Fact]
    public void StepsEqualTensorFlowsAdamWrittenOutPerParameter()
    {
        // TensorFlow 1's update, one parameter at a time in float; the optimiser (SIMD over whole vectors, then the
        // rest) gives the same values to the bit, over steps with changing learning rates and an odd parameter count.
        const int n = 1003;
        var random = new Random(9);
        var theta = new float[n];
        for (int i = 0; i < n; i++)
            theta[i] = (float)(random.NextDouble() - 0.5);
        var expected = (float[])theta.Clone();
        float[] m = new float[n], v = new float[n];
        var adam = new AdamOptimizer(n, 0.05);
        for (int t = 1; t <= 6; t++)
        {
            var g = new float[n];
            for (int i = 0; i < n; i++)
                g[i] = (float)((random.NextDouble() - 0.5) * Math.Pow(10, -random.Next(4)));
            double rate = 0.05 / t;
            adam.Step(theta, g, rate);
            float lr = (float)(rate * Math.Sqrt(1 - Math.Pow(0.999, t)) / (1 - Math.Pow(0.9, t)));
            for (int i = 0; i < n; i++)
            {
                m[i] = 0.9f * m[i] + (1 - 0.9f) * g[i];
                v[i] = 0.999f * v[i] + (1 - 0.999f) * g[i] * g[i];
                expected[i] -= lr * m[i] / (MathF.Sqrt(v[i]) + 1e-8f);
            }
            Assert.Equal(expected, theta);
        }
    }
}
