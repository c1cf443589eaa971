using Microsoft.ML.ActivationAtlas.Onnx;

namespace Microsoft.ML.ActivationAtlas.Inversion.Network;

/// <summary>
/// The network side of feature inversion: a hidden layer as a function of an image batch, and its vector-Jacobian
/// product. Images are planar RGB in [0, 1], <c>[batch, 3, InputHeight, InputWidth]</c>; the model applies its own
/// preprocessing (and the preprocessing's adjoint). Layers are <c>[batch, LayerChannels, LayerHeight, LayerWidth]</c>,
/// or for a vision transformer's token layer (<see cref="Tokens"/> set) <c>[batch, LayerChannels, T]</c>: its
/// <see cref="TokenLayout.PrefixTokens"/> class and register tokens, then the <c>LayerHeight x LayerWidth</c> patch grid
/// in row-major order.
/// </summary>
public interface ILayerGradientModel : IDisposable
{
    /// <summary>Input image height the network takes.</summary>
    int InputHeight { get; }

    /// <summary>Input image width the network takes.</summary>
    int InputWidth { get; }

    /// <summary>Channels of the layer.</summary>
    int LayerChannels { get; }

    /// <summary>Layer height.</summary>
    int LayerHeight { get; }

    /// <summary>Layer width.</summary>
    int LayerWidth { get; }

    /// <summary>The layout of a token layer presented as <c>[batch, LayerChannels, T]</c>; null (the default) for a spatial layer.</summary>
    TokenLayout? Tokens => null;

    /// <summary>The largest batch one call accepts (callers split larger batches).</summary>
    int MaxBatchSize { get; }

    /// <summary>Evaluates the layer for a batch of images.</summary>
    void Forward(ReadOnlySpan<float> images, int batch, Span<float> layer);

    /// <summary>
    /// Evaluates the layer and the vector-Jacobian product: <paramref name="imageGradient"/> =
    /// d(sum(seed * layer)) / d(images), for a batch of images and a layer-shaped seed.
    /// </summary>
    void Backward(ReadOnlySpan<float> images, int batch, ReadOnlySpan<float> layerSeed, Span<float> layer, Span<float> imageGradient);
}
