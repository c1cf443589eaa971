using Microsoft.ML.ActivationAtlas.Extraction;
using Microsoft.ML.ActivationAtlas.Inversion.Network;
using Microsoft.ML.ActivationAtlas.Onnx;
using Microsoft.ML.OnnxRuntime;

namespace Microsoft.ML.ActivationAtlas.Inversion;

/// <summary>Builds the network side of feature inversion from an <see cref="ActivationModel"/>.</summary>
internal static class InversionNetwork
{
    public static OnnxLayerGradientModel Open(ActivationModel model, string layer, int inputSize, OnnxSessionOptions? session, int maxBatch,
        bool reluRedirection = false, TokenLayout? tokens = null)
    {
        var normalization = Normalization(model, inputSize);
        return OnnxLayerGradientModel.Create(model.Network, layer, new OnnxLayerModelOptions
        {
            InputSize = inputSize,
            Normalization = normalization,
            Session = session,
            MaxBatchSize = maxBatch,
            ReluRedirection = reluRedirection,
            Tokens = tokens,
        });
    }

    /// <summary>
    /// The network of icons of <see cref="FeatureInversionEstimator.Options.Size"/>: at
    /// <see cref="FeatureInversionEstimator.Options.NetworkInputSize"/> when set, else at the icon size, or at the next
    /// multiple of 32 when the network's shapes do not fit the icon size (a block with fixed padding, as ResNet18's 7x7
    /// block at 80 px), or else at the size the model declares (a vision transformer, whose learned position
    /// embeddings fix its patch grid).
    /// </summary>
    public static OnnxLayerGradientModel ForIcons(FeatureInversionEstimator.Options options, bool reluRedirection = false)
    {
        var model = options.Model!;
        OnnxLayerGradientModel At(int size) => Open(model, options.Layer, size, options.Session, options.BatchSize, reluRedirection, options.Tokens);
        if (options.NetworkInputSize is { } size)
            return At(size);
        var sizes = new List<int> { options.Size };
        if (options.Size % 32 != 0)
            sizes.Add((options.Size + 31) / 32 * 32);
        if (InversionCatalog.TryDeclaredSize(model) is { } declared && !sizes.Contains(declared))
            sizes.Add(declared);
        for (int i = 0; ; i++)
        {
            try
            {
                return At(sizes[i]);
            }
            catch (OnnxRuntimeException) when (i + 1 < sizes.Count)
            {
            }
        }
    }

    /// <summary>
    /// [0, 1] RGB -> network input: the model's pixel conversion (on 0..255 pixels), then its preprocessing model when
    /// it is a channel reorder + mean-image subtraction (as ML.NET's DNN featurizer models are).
    /// </summary>
    public static InputNormalization Normalization(ActivationModel model, int inputSize)
    {
        var (scale, offset, source) = model.Preprocessing.Affine();
        if (!model.Preprocessing.Planar)
            throw new NotSupportedException($"Feature inversion needs a planar [N, 3, H, W] network; {model.Description} is interleaved.");
        if (model.PreprocessingModel is not { } pre)
        {
            // value[c] = 255 a[c] x[src[c]] + b[c]  =  (x - m) / s  with s = 1 / (255 a), m = -b / (255 a)
            var std = scale.Select(a => 1f / (255f * a)).ToArray();
            var mean = offset.Select((b, c) => -b / (255f * scale[c])).ToArray();
            return new InputNormalization(1f, source, mean, std);
        }
        // The preprocessing model reorders channels and subtracts a mean image from the converted pixels p:
        // net[c] = p[o] - M[c] with p[o] = 255 a[o] x[src[o]] + b[o]  =  (255 x[src[o]] - (M[c] - b[o]) / a[o]) / (1 / a[o]).
        var inner = MeanImagePreprocessing.FromModel(pre, inputSize, "the preprocessing model of " + model.Description, 1f);
        int[] order = inner.ChannelOrder.ToArray();
        int plane = inputSize * inputSize;
        var meanImage = inner.MeanValues.ToArray();
        var src = new int[3];
        var stdOut = new float[3];
        for (int c = 0; c < 3; c++)
        {
            int o = order[c];
            src[c] = source[o];
            stdOut[c] = 1f / scale[o];
            for (int p = 0; p < plane; p++)
                meanImage[c * plane + p] = (meanImage[c * plane + p] - offset[o]) / scale[o];
        }
        return new InputNormalization(255f, src, meanImage, stdOut);
    }
}
