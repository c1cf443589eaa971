using Microsoft.ML.ActivationAtlas.Onnx;

namespace Microsoft.ML.ActivationAtlas.Inversion.Network;

/// <summary>Settings of <see cref="OnnxLayerGradientModel"/>.</summary>
public sealed class OnnxLayerModelOptions
{
    /// <summary>
    /// The square input size the network is run at; null uses the size the model declares (which must then be fixed).
    /// Convolutional networks cut at a hidden layer run at any size, as lucid does for icons (e.g. 80 px).
    /// </summary>
    public int? InputSize { get; set; }

    /// <summary>The preprocessing from [0, 1] RGB to the network's input (default identity).</summary>
    public InputNormalization Normalization { get; set; } = InputNormalization.Identity;

    /// <summary>ONNX Runtime session settings; null for CPU defaults.</summary>
    public OnnxSessionOptions? Session { get; set; }

    /// <summary>
    /// lucid's ReLU gradient redirection in the gradient graph (see <c>VjpOptions.ReluRedirection</c>): where no
    /// gradient passes a ReLU for an icon, pass it anyway, so that a channel that is off for a grey image can still be
    /// switched on. Useful for single channels and neurons (default false, the exact gradient).
    /// </summary>
    public bool ReluRedirection { get; set; }

    /// <summary>
    /// How a 3-D token layer of a vision transformer is laid out (the <see cref="TokenLayout"/> extraction uses); null
    /// for <see cref="TokenLayout.Default"/> ([N, T, C], one class token). Ignored for a 4-D layer.
    /// </summary>
    public TokenLayout? Tokens { get; set; }

    /// <summary>The largest batch per run (default 64).</summary>
    public int MaxBatchSize { get; set; } = 64;
}
