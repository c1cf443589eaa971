using Microsoft.ML.ActivationAtlas.Inversion.Transforms;
using Microsoft.ML.ActivationAtlas.Onnx;

namespace Microsoft.ML.ActivationAtlas.Inversion.Network;

/// <summary>
/// Reads ML.NET's DNN image featurizer preprocessing models (e.g. <c>ResNetPreprocess.onnx</c>: split RGB, concatenate
/// as BGR, subtract a mean image, on 0..255 pixels) into an <see cref="InputNormalization"/> with an exact adjoint.
/// </summary>
public static class MeanImagePreprocessing
{
    /// <summary>Loads the preprocessing model and resizes its mean image (bilinear) to <paramref name="inputSize"/> when needed.</summary>
    /// <param name="path">The preprocessing .onnx file.</param>
    /// <param name="inputSize">The square size the network is run at.</param>
    public static InputNormalization Load(string path, int inputSize)
    {
        if (!File.Exists(path))
            throw new FileNotFoundException($"The preprocessing model '{path}' does not exist.", path);
        return FromModel(OnnxModelIO.Load(path), inputSize, path);
    }

    /// <summary>Reads a loaded preprocessing model (see <see cref="Load"/>).</summary>
    /// <param name="model">The preprocessing model.</param>
    /// <param name="inputSize">The square size the network is run at.</param>
    /// <param name="description">How to name the model in errors.</param>
    /// <param name="pixelScale">The value a [0, 1] pixel is multiplied by before the model (255 for 0..255 pixels).</param>
    public static InputNormalization FromModel(Onnx.Protobuf.ModelProto model, int inputSize, string description = "the preprocessing model", float pixelScale = 255f)
    {
        ArgumentNullException.ThrowIfNull(model);
        string path = description;
        var g = model.Graph;
        var ops = g.Node.Select(n => n.OpType).ToArray();
        if (ops is not ["Split", "Concat", "Sub"])
            throw new InvalidDataException($"'{path}' is not a channel-reorder + mean-subtraction model (its ops are {string.Join(", ", ops)}).");
        var split = g.Node[0].Output.ToList();
        int[] order = g.Node[1].Input.Select(i => split.IndexOf(i)).ToArray();
        if (order.Length != 3 || order.Any(i => i < 0))
            throw new InvalidDataException($"'{path}': the Concat does not reorder the three split channels.");
        var meanTensor = g.Initializer.FirstOrDefault(t => t.Name == g.Node[2].Input[1])
            ?? throw new InvalidDataException($"'{path}': the subtracted mean is not an initializer.");
        float[] mean = OnnxTensors.ToFloats(meanTensor);
        var dims = meanTensor.Dims.ToArray();
        if (dims.Length != 4 || dims[1] != 3)
            throw new InvalidDataException($"'{path}': the mean image has shape [{string.Join(", ", dims)}]; expected [1, 3, H, W].");
        int h = (int)dims[2], w = (int)dims[3];
        if (h != inputSize || w != inputSize)
        {
            var map = new SampledMap();
            map.SetResize(h, w, inputSize, inputSize, halfPixel: true);
            var resized = new float[3 * inputSize * inputSize];
            map.Forward(mean, resized, 3);
            mean = resized;
        }
        return new InputNormalization(pixelScale, order, mean);
    }
}
