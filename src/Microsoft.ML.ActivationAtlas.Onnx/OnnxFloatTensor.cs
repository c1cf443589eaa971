using Microsoft.ML.ActivationAtlas.Onnx.Protobuf;

namespace Microsoft.ML.ActivationAtlas.Onnx;

/// <summary>A dense float tensor: row-major values and a shape.</summary>
/// <param name="Data">Row-major values.</param>
/// <param name="Shape">Dimensions.</param>
public sealed record OnnxFloatTensor(float[] Data, long[] Shape)
{
    /// <summary>Reads a FLOAT tensor (e.g. a serialized <c>.pb</c> test-data file of ONNX).</summary>
    /// <param name="tensor">The tensor.</param>
    public static OnnxFloatTensor FromProto(TensorProto tensor) => new(OnnxTensors.ToFloats(tensor), tensor.Dims.ToArray());

    /// <summary>Reads a serialized <see cref="TensorProto"/> file (the format of ONNX's backend test data).</summary>
    /// <param name="path">The <c>.pb</c> file.</param>
    public static OnnxFloatTensor Load(string path) => FromProto(TensorProto.Parser.ParseFrom(File.ReadAllBytes(path)));

    /// <summary>This tensor as a <see cref="TensorProto"/> named <paramref name="name"/>.</summary>
    /// <param name="name">The tensor's name.</param>
    public TensorProto ToProto(string name) => OnnxTensors.FromFloats(name, Data, Shape);
}
