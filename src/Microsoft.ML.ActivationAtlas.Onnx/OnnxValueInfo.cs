using Microsoft.ML.ActivationAtlas.Onnx.Protobuf;
using DataType = Microsoft.ML.ActivationAtlas.Onnx.Protobuf.TensorProto.Types.DataType;

namespace Microsoft.ML.ActivationAtlas.Onnx;

/// <summary>Constructors and readers for graph input/output declarations (<see cref="ValueInfoProto"/>).</summary>
public static class OnnxValueInfo
{
    /// <summary>
    /// A tensor declaration. Each dimension is a <see cref="long"/> (fixed size), a <see cref="string"/>
    /// (symbolic, e.g. <c>"batch"</c>) or null (unknown).
    /// </summary>
    /// <param name="name">The tensor's name.</param>
    /// <param name="elementType">The element type (ONNX <c>TensorProto.DataType</c>).</param>
    /// <param name="dims">The dimensions; pass none to leave the shape unknown.</param>
    public static ValueInfoProto Tensor(string name, DataType elementType, params object?[] dims)
    {
        var tensor = new TypeProto.Types.Tensor { ElemType = (int)elementType };
        if (dims.Length > 0)
        {
            tensor.Shape = new TensorShapeProto();
            foreach (var d in dims)
            {
                var dim = new TensorShapeProto.Types.Dimension();
                switch (d)
                {
                    case null: break;
                    case string s: dim.DimParam = s; break;
                    case IConvertible c: dim.DimValue = c.ToInt64(System.Globalization.CultureInfo.InvariantCulture); break;
                    default: throw new ArgumentException($"Dimension '{d}' of '{name}' must be a number, a string or null.", nameof(dims));
                }
                tensor.Shape.Dim.Add(dim);
            }
        }
        return new ValueInfoProto { Name = name, Type = new TypeProto { TensorType = tensor } };
    }

    /// <summary>A FLOAT tensor declaration (see <see cref="Tensor"/> for the dimension forms).</summary>
    /// <param name="name">The tensor's name.</param>
    /// <param name="dims">The dimensions.</param>
    public static ValueInfoProto Float(string name, params object?[] dims) => Tensor(name, DataType.Float, dims);

    /// <summary>The declared dimensions: a size, or -1 where symbolic or unknown. Null when no shape is declared.</summary>
    /// <param name="info">The declaration.</param>
    public static long[]? Dims(ValueInfoProto info)
    {
        var shape = info.Type?.TensorType?.Shape;
        if (shape is null)
            return null;
        return shape.Dim.Select(d => d.ValueCase == TensorShapeProto.Types.Dimension.ValueOneofCase.DimValue ? d.DimValue : -1).ToArray();
    }

    /// <summary>The declared element type, or <see cref="DataType.Undefined"/>.</summary>
    /// <param name="info">The declaration.</param>
    public static DataType ElementType(ValueInfoProto info) => (DataType)(info.Type?.TensorType?.ElemType ?? 0);
}
