using Microsoft.ML.ActivationAtlas.Inversion.Network;

namespace Microsoft.ML.ActivationAtlas.Tests.Inversion;

/// <summary>
/// A small seeded dense "network" (layer = W x + 0.1 relu(W x): piecewise linear, no dead units) that implements <see cref="ILayerGradientModel"/> exactly
/// in C#, so the renderer's image side can be tested without ONNX.
/// </summary>
internal sealed class LinearLayerModel : ILayerGradientModel
{
    private readonly float[] _w;

    public LinearLayerModel(int size, int channels, int layerSize, int seed)
    {
        InputHeight = InputWidth = size;
        LayerChannels = channels;
        LayerHeight = LayerWidth = layerSize;
        var r = new Random(seed);
        int n = 3 * size * size, m = channels * layerSize * layerSize;
        _w = new float[m * n];
        for (int i = 0; i < _w.Length; i++)
            _w[i] = (float)((r.NextDouble() - 0.5) / Math.Sqrt(n));
    }

    public int InputHeight { get; }
    public int InputWidth { get; }
    public int LayerChannels { get; }
    public int LayerHeight { get; }
    public int LayerWidth { get; }
    public int MaxBatchSize => 3;
    public int ForwardCalls { get; private set; }
    public int BackwardCalls { get; private set; }

    public void Forward(ReadOnlySpan<float> images, int batch, Span<float> layer)
    {
        ForwardCalls++;
        int n = 3 * InputHeight * InputWidth, m = LayerChannels * LayerHeight * LayerWidth;
        for (int b = 0; b < batch; b++)
            for (int j = 0; j < m; j++)
                {
                    float z = System.Numerics.Tensors.TensorPrimitives.Dot(_w.AsSpan(j * n, n), images.Slice(b * n, n));
                    layer[b * m + j] = z + 0.1f * Math.Max(0f, z);
                }
    }

    public void Backward(ReadOnlySpan<float> images, int batch, ReadOnlySpan<float> layerSeed, Span<float> layer, Span<float> imageGradient)
    {
        Forward(images, batch, layer);
        ForwardCalls--;
        BackwardCalls++;
        int n = 3 * InputHeight * InputWidth, m = LayerChannels * LayerHeight * LayerWidth;
        imageGradient[..(batch * n)].Clear();
        for (int b = 0; b < batch; b++)
            for (int j = 0; j < m; j++)
            {
                float g = layerSeed[b * m + j] * (layer[b * m + j] > 0 ? 1.1f : 1f);
                if (g != 0)
                    System.Numerics.Tensors.TensorPrimitives.MultiplyAdd(_w.AsSpan(j * n, n), g, imageGradient.Slice(b * n, n), imageGradient.Slice(b * n, n));
            }
    }

    public void Dispose()
    {
    }
}
