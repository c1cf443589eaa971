using System.Numerics.Tensors;
using Microsoft.ML.ActivationAtlas.Onnx;
using Microsoft.ML.ActivationAtlas.Onnx.Protobuf;

namespace Microsoft.ML.ActivationAtlas.Attribution;

/// <summary>
/// A classifier whose logits read the layer only through a linear head on its spatial mean,
/// logits = W . mean_{y,x}(layer) + b (the graph <see cref="ClassifierHead.Attach(ModelProto, string, float[], float[], IReadOnlyList{string})"/>
/// builds: GlobalAveragePool, Flatten, Gemm; on a token layer, the mean over its G x G patch tokens as a MatMul with a
/// constant pooling vector, Flatten, Gemm). Every position's (or patch token's) gradient of logit k is then W_k / (H W), so the
/// attribution of an activation vector h is h . d(logit_k)/dh = (W_k . h) / (H W): no network run is needed.
/// </summary>
internal sealed class LinearSpatialMeanHead
{
    private readonly float[] _weights;
    private readonly float _scale;

    private LinearSpatialMeanHead(float[] weights, int classes, int channels, int positions)
    {
        _weights = weights;
        ClassCount = classes;
        Channels = channels;
        _scale = 1f / positions;
    }

    public int ClassCount { get; }

    public int Channels { get; }

    /// <summary>The head of <paramref name="network"/> from <paramref name="layer"/> (its tensor name) to <paramref name="logits"/>, or null when the logits are not such a head.</summary>
    public static LinearSpatialMeanHead? Find(ModelProto network, OnnxLayerInfo layer, string logits)
    {
        var graph = network.Graph;
        NodeProto? Producer(string tensor) => graph.Node.SingleOrDefault(n => n.Output.Contains(tensor));
        TensorProto? Initializer(string name) => graph.Initializer.FirstOrDefault(i => i.Name == name);

        var gemm = Producer(logits);
        if (gemm is null || gemm.OpType != "Gemm" || gemm.Input.Count < 2)
            return null;
        if (OnnxAttributes.GetFloat(gemm, "alpha", 1f) != 1f || OnnxAttributes.GetInt(gemm, "transA", 0) != 0)
            return null;
        var flatten = Producer(gemm.Input[0]);
        if (flatten is null || flatten.OpType != "Flatten" || OnnxAttributes.GetInt(flatten, "axis", 1) != 1)
            return null;
        var pool = Producer(flatten.Input[0]);
        if (pool is null || !(IsSpatialMean(pool, layer) || IsPatchMean(pool, layer, Initializer)))
            return null;
        if (Initializer(gemm.Input[1]) is not { } w || w.Dims.Count != 2)
            return null;
        var values = OnnxTensors.ToFloats(w);
        bool transB = OnnxAttributes.GetInt(gemm, "transB", 0) != 0;
        int k = (int)(transB ? w.Dims[0] : w.Dims[1]), c = (int)(transB ? w.Dims[1] : w.Dims[0]);
        if (c != layer.Channels)
            return null;
        if (!transB)
        {
            var t = new float[k * c];
            for (int i = 0; i < c; i++)
                for (int j = 0; j < k; j++)
                    t[j * c + i] = values[i * k + j];
            values = t;
        }
        return new LinearSpatialMeanHead(values, k, c, layer.Height * layer.Width);
    }

    private static bool IsSpatialMean(NodeProto pool, OnnxLayerInfo layer) =>
        layer.Tokens is null && pool.OpType == "GlobalAveragePool" && pool.Input[0] == layer.Name;

    /// <summary>
    /// A token layer's mean over its patch tokens as <see cref="ClassifierHead"/> writes it: MatMul of a constant
    /// [1, T] pooling row with [N, T, C], or of [N, C, T] with a [T, 1] column, 1 / G^2 at each patch token and 0 at
    /// the class and register tokens.
    /// </summary>
    private static bool IsPatchMean(NodeProto pool, OnnxLayerInfo layer, Func<string, TensorProto?> initializer)
    {
        if (layer.Tokens is not { } tokens || pool.OpType != "MatMul" || pool.Input.Count != 2)
            return false;
        int layerSide = tokens.ChannelsFirst ? 0 : 1;
        if (pool.Input[layerSide] != layer.Name || initializer(pool.Input[1 - layerSide]) is not { } p)
            return false;
        long[] expected = tokens.ChannelsFirst ? [layer.TokenCount, 1] : [1, layer.TokenCount];
        if (!p.Dims.SequenceEqual(expected))
            return false;
        var values = OnnxTensors.ToFloats(p);
        float mean = 1f / (layer.Height * layer.Width);
        for (int t = 0; t < values.Length; t++)
            if (Math.Abs(values[t] - (t < tokens.PrefixTokens ? 0f : mean)) > 1e-6f * mean)
                return false;
        return true;
    }

    /// <summary>(W_k . h) / (H W) for every class k of one activation vector.</summary>
    public void Attribute(ReadOnlySpan<float> h, Span<float> result)
    {
        for (int k = 0; k < ClassCount; k++)
            result[k] = TensorPrimitives.Dot(_weights.AsSpan(k * Channels, Channels), h) * _scale;
    }
}
