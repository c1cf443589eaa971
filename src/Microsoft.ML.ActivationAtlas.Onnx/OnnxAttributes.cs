using Google.Protobuf;
using Microsoft.ML.ActivationAtlas.Onnx.Protobuf;
using AttrType = Microsoft.ML.ActivationAtlas.Onnx.Protobuf.AttributeProto.Types.AttributeType;

namespace Microsoft.ML.ActivationAtlas.Onnx;

/// <summary>Constructors and readers for node attributes.</summary>
public static class OnnxAttributes
{
    /// <summary>An INT attribute.</summary>
    /// <param name="name">Attribute name.</param>
    /// <param name="value">Value.</param>
    public static AttributeProto Int(string name, long value) => new() { Name = name, Type = AttrType.Int, I = value };

    /// <summary>An INTS attribute.</summary>
    /// <param name="name">Attribute name.</param>
    /// <param name="values">Values.</param>
    public static AttributeProto Ints(string name, params long[] values)
    {
        var a = new AttributeProto { Name = name, Type = AttrType.Ints };
        a.Ints.AddRange(values);
        return a;
    }

    /// <summary>An INTS attribute.</summary>
    /// <param name="name">Attribute name.</param>
    /// <param name="values">Values.</param>
    public static AttributeProto Ints(string name, IEnumerable<long> values)
    {
        var a = new AttributeProto { Name = name, Type = AttrType.Ints };
        a.Ints.AddRange(values);
        return a;
    }

    /// <summary>A FLOAT attribute.</summary>
    /// <param name="name">Attribute name.</param>
    /// <param name="value">Value.</param>
    public static AttributeProto Float(string name, float value) => new() { Name = name, Type = AttrType.Float, F = value };

    /// <summary>A FLOATS attribute.</summary>
    /// <param name="name">Attribute name.</param>
    /// <param name="values">Values.</param>
    public static AttributeProto Floats(string name, params float[] values)
    {
        var a = new AttributeProto { Name = name, Type = AttrType.Floats };
        a.Floats.AddRange(values);
        return a;
    }

    /// <summary>A STRING attribute (UTF-8).</summary>
    /// <param name="name">Attribute name.</param>
    /// <param name="value">Value.</param>
    public static AttributeProto String(string name, string value) => new() { Name = name, Type = AttrType.String, S = ByteString.CopyFromUtf8(value) };

    /// <summary>A TENSOR attribute (e.g. <c>value</c> of a Constant node).</summary>
    /// <param name="name">Attribute name.</param>
    /// <param name="value">Value.</param>
    public static AttributeProto Tensor(string name, TensorProto value) => new() { Name = name, Type = AttrType.Tensor, T = value };

    /// <summary>Finds a node's attribute by name, or null.</summary>
    /// <param name="node">The node.</param>
    /// <param name="name">Attribute name.</param>
    public static AttributeProto? Find(NodeProto node, string name)
    {
        foreach (var a in node.Attribute)
            if (a.Name == name)
                return a;
        return null;
    }

    /// <summary>An INT attribute's value, or <paramref name="fallback"/> when absent.</summary>
    /// <param name="node">The node.</param>
    /// <param name="name">Attribute name.</param>
    /// <param name="fallback">Value when absent.</param>
    public static long GetInt(NodeProto node, string name, long fallback) => Find(node, name)?.I ?? fallback;

    /// <summary>A FLOAT attribute's value, or <paramref name="fallback"/> when absent.</summary>
    /// <param name="node">The node.</param>
    /// <param name="name">Attribute name.</param>
    /// <param name="fallback">Value when absent.</param>
    public static float GetFloat(NodeProto node, string name, float fallback) => Find(node, name)?.F ?? fallback;

    /// <summary>An INTS attribute's values, or null when absent.</summary>
    /// <param name="node">The node.</param>
    /// <param name="name">Attribute name.</param>
    public static long[]? GetInts(NodeProto node, string name) => Find(node, name)?.Ints.ToArray();

    /// <summary>A STRING attribute's value, or <paramref name="fallback"/> when absent.</summary>
    /// <param name="node">The node.</param>
    /// <param name="name">Attribute name.</param>
    /// <param name="fallback">Value when absent.</param>
    public static string GetString(NodeProto node, string name, string fallback) => Find(node, name)?.S.ToStringUtf8() ?? fallback;

    /// <summary>Copies of a node's attributes, without those named in <paramref name="excluded"/>.</summary>
    /// <param name="node">The node.</param>
    /// <param name="excluded">Names of the attributes to leave out.</param>
    public static IEnumerable<AttributeProto> CopyExcept(NodeProto node, params string[] excluded) =>
        node.Attribute.Where(a => Array.IndexOf(excluded, a.Name) < 0).Select(a => a.Clone());
}
