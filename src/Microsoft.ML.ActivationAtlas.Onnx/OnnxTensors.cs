using System.Runtime.InteropServices;
using Google.Protobuf;
using Microsoft.ML.ActivationAtlas.Onnx.Protobuf;
using DataType = Microsoft.ML.ActivationAtlas.Onnx.Protobuf.TensorProto.Types.DataType;

namespace Microsoft.ML.ActivationAtlas.Onnx;

/// <summary>
/// Conversions between <see cref="TensorProto"/> and arrays, and constructors for initializers. Readers accept
/// every storage form (<c>raw_data</c> or the typed fields) and convert between numeric types where it is lossless
/// in practice (e.g. an INT32 tensor read as <c>long[]</c>).
/// </summary>
public static class OnnxTensors
{
    /// <summary>The number of elements of a tensor with dimensions <paramref name="dims"/> (1 for a scalar).</summary>
    /// <param name="dims">The dimensions.</param>
    public static long ElementCount(IEnumerable<long> dims)
    {
        long n = 1;
        foreach (long d in dims)
            n *= d;
        return n;
    }

    /// <summary>Reads a tensor's values as floats (FLOAT, DOUBLE, FLOAT16 and integer tensors).</summary>
    /// <param name="tensor">The tensor; external data must have been inlined (see <see cref="OnnxModelIO.Load"/>).</param>
    public static float[] ToFloats(TensorProto tensor)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        CheckInline(tensor);
        var type = (DataType)tensor.DataType;
        if (!tensor.RawData.IsEmpty)
        {
            var raw = tensor.RawData.Span;
            switch (type)
            {
                case DataType.Float: return MemoryMarshal.Cast<byte, float>(raw).ToArray();
                case DataType.Double: return Array.ConvertAll(MemoryMarshal.Cast<byte, double>(raw).ToArray(), v => (float)v);
                case DataType.Float16: return Array.ConvertAll(MemoryMarshal.Cast<byte, Half>(raw).ToArray(), v => (float)v);
                case DataType.Int32: return Array.ConvertAll(MemoryMarshal.Cast<byte, int>(raw).ToArray(), v => (float)v);
                case DataType.Int64: return Array.ConvertAll(MemoryMarshal.Cast<byte, long>(raw).ToArray(), v => (float)v);
                case DataType.Uint8: return Array.ConvertAll(raw.ToArray(), v => (float)v);
                case DataType.Int8: return Array.ConvertAll(MemoryMarshal.Cast<byte, sbyte>(raw).ToArray(), v => (float)v);
            }
        }
        else
        {
            switch (type)
            {
                case DataType.Float: return tensor.FloatData.ToArray();
                case DataType.Double: return tensor.DoubleData.Select(v => (float)v).ToArray();
                case DataType.Float16: return tensor.Int32Data.Select(v => (float)BitConverter.UInt16BitsToHalf((ushort)v)).ToArray();
                case DataType.Int32 or DataType.Uint8 or DataType.Int8 or DataType.Int16 or DataType.Uint16 or DataType.Bool:
                    return tensor.Int32Data.Select(v => (float)v).ToArray();
                case DataType.Int64: return tensor.Int64Data.Select(v => (float)v).ToArray();
            }
        }
        throw new NotSupportedException($"Tensor '{tensor.Name}' has element type {type}, which cannot be read as floats.");
    }

    /// <summary>Reads an integer tensor's values as longs (INT64, INT32 and smaller integer types, BOOL).</summary>
    /// <param name="tensor">The tensor.</param>
    public static long[] ToLongs(TensorProto tensor)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        CheckInline(tensor);
        var type = (DataType)tensor.DataType;
        if (!tensor.RawData.IsEmpty)
        {
            var raw = tensor.RawData.Span;
            switch (type)
            {
                case DataType.Int64: return MemoryMarshal.Cast<byte, long>(raw).ToArray();
                case DataType.Int32: return Array.ConvertAll(MemoryMarshal.Cast<byte, int>(raw).ToArray(), v => (long)v);
                case DataType.Uint8 or DataType.Bool: return Array.ConvertAll(raw.ToArray(), v => (long)v);
                case DataType.Int8: return Array.ConvertAll(MemoryMarshal.Cast<byte, sbyte>(raw).ToArray(), v => (long)v);
                case DataType.Uint64: return MemoryMarshal.Cast<byte, long>(raw).ToArray();
            }
        }
        else
        {
            switch (type)
            {
                case DataType.Int64: return tensor.Int64Data.ToArray();
                case DataType.Int32 or DataType.Uint8 or DataType.Int8 or DataType.Int16 or DataType.Uint16 or DataType.Bool:
                    return tensor.Int32Data.Select(v => (long)v).ToArray();
                case DataType.Uint64: return tensor.Uint64Data.Select(v => (long)v).ToArray();
            }
        }
        throw new NotSupportedException($"Tensor '{tensor.Name}' has element type {type}, which cannot be read as integers.");
    }

    /// <summary>Reads an integer tensor's values as ints.</summary>
    /// <param name="tensor">The tensor.</param>
    public static int[] ToInts(TensorProto tensor) => Array.ConvertAll(ToLongs(tensor), v => checked((int)v));

    /// <summary>A FLOAT tensor (stored as <c>raw_data</c>).</summary>
    /// <param name="name">The tensor's name.</param>
    /// <param name="values">Row-major values; their count must match <paramref name="dims"/>.</param>
    /// <param name="dims">The dimensions; none for a scalar.</param>
    public static TensorProto FromFloats(string name, ReadOnlySpan<float> values, params long[] dims) =>
        Create(name, DataType.Float, MemoryMarshal.AsBytes(values), values.Length, dims);

    /// <summary>An INT64 tensor (stored as <c>raw_data</c>).</summary>
    /// <param name="name">The tensor's name.</param>
    /// <param name="values">Row-major values.</param>
    /// <param name="dims">The dimensions; none for a scalar.</param>
    public static TensorProto FromLongs(string name, ReadOnlySpan<long> values, params long[] dims) =>
        Create(name, DataType.Int64, MemoryMarshal.AsBytes(values), values.Length, dims);

    /// <summary>An INT32 tensor (stored as <c>raw_data</c>).</summary>
    /// <param name="name">The tensor's name.</param>
    /// <param name="values">Row-major values.</param>
    /// <param name="dims">The dimensions; none for a scalar.</param>
    public static TensorProto FromInts(string name, ReadOnlySpan<int> values, params long[] dims) =>
        Create(name, DataType.Int32, MemoryMarshal.AsBytes(values), values.Length, dims);

    /// <summary>A 1-D INT64 tensor, the usual form of shape, axes and index inputs.</summary>
    /// <param name="name">The tensor's name.</param>
    /// <param name="values">The values.</param>
    public static TensorProto Vector(string name, params long[] values) => FromLongs(name, values, values.Length);

    /// <summary>A scalar FLOAT tensor.</summary>
    /// <param name="name">The tensor's name.</param>
    /// <param name="value">The value.</param>
    public static TensorProto Scalar(string name, float value) => FromFloats(name, [value]);

    /// <summary>A scalar INT64 tensor.</summary>
    /// <param name="name">The tensor's name.</param>
    /// <param name="value">The value.</param>
    public static TensorProto Scalar(string name, long value) => FromLongs(name, [value]);

    /// <summary>The tensor's data as little-endian bytes in its own element type (converted from typed fields when needed).</summary>
    /// <param name="tensor">The tensor.</param>
    public static byte[] ToRawBytes(TensorProto tensor)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        CheckInline(tensor);
        if (!tensor.RawData.IsEmpty)
            return tensor.RawData.ToByteArray();
        return (DataType)tensor.DataType switch
        {
            DataType.Float => MemoryMarshal.AsBytes(tensor.FloatData.ToArray().AsSpan()).ToArray(),
            DataType.Double => MemoryMarshal.AsBytes(tensor.DoubleData.ToArray().AsSpan()).ToArray(),
            DataType.Int64 => MemoryMarshal.AsBytes(tensor.Int64Data.ToArray().AsSpan()).ToArray(),
            DataType.Uint64 => MemoryMarshal.AsBytes(tensor.Uint64Data.ToArray().AsSpan()).ToArray(),
            DataType.Int32 => MemoryMarshal.AsBytes(tensor.Int32Data.ToArray().AsSpan()).ToArray(),
            DataType.Int16 or DataType.Uint16 or DataType.Float16 or DataType.Bfloat16 =>
                MemoryMarshal.AsBytes(tensor.Int32Data.Select(v => (ushort)v).ToArray().AsSpan()).ToArray(),
            DataType.Int8 or DataType.Uint8 or DataType.Bool => tensor.Int32Data.Select(v => (byte)v).ToArray(),
            var t => throw new NotSupportedException($"Tensor '{tensor.Name}' has element type {t}, which has no raw byte form here."),
        };
    }

    /// <summary>Rewrites a tensor so its data is stored as <c>raw_data</c> (the typed fields are cleared).</summary>
    /// <param name="tensor">The tensor, modified in place.</param>
    public static void ToRawStorage(TensorProto tensor)
    {
        var bytes = ToRawBytes(tensor);
        ClearData(tensor);
        tensor.RawData = ByteString.CopyFrom(bytes);
    }

    internal static void ClearData(TensorProto t)
    {
        t.RawData = ByteString.Empty;
        t.FloatData.Clear();
        t.DoubleData.Clear();
        t.Int32Data.Clear();
        t.Int64Data.Clear();
        t.Uint64Data.Clear();
        t.ExternalData.Clear();
    }

    private static TensorProto Create(string name, DataType type, ReadOnlySpan<byte> bytes, int count, long[] dims)
    {
        ArgumentNullException.ThrowIfNull(name);
        if (ElementCount(dims) != count)
            throw new ArgumentException($"Tensor '{name}': {count} values do not fill the shape [{string.Join(", ", dims)}].", nameof(dims));
        var t = new TensorProto { Name = name, DataType = (int)type, RawData = ByteString.CopyFrom(bytes) };
        t.Dims.AddRange(dims);
        return t;
    }

    private static void CheckInline(TensorProto t)
    {
        if (t.DataLocation == TensorProto.Types.DataLocation.External)
            throw new InvalidOperationException($"Tensor '{t.Name}' still references external data; load the model with OnnxModelIO.Load (which inlines it) first.");
    }
}
