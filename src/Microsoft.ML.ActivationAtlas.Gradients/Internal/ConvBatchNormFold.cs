using Microsoft.ML.ActivationAtlas.Onnx.Protobuf;

namespace Microsoft.ML.ActivationAtlas.Gradients.Internal;

/// <summary>
/// Folds inference batch normalizations into the convolutions that feed them (W' = k W per output channel,
/// b' = k (b - mean) + beta, k = scale / sqrt(var + eps)), as ONNX Runtime does to the forward pass. Done before
/// differentiating, the scale also reaches the derivative: the input gradient of the folded Conv carries k in its
/// weights instead of a separate per-channel BatchNormalization in the backward pass.
/// </summary>
internal static class ConvBatchNormFold
{
    /// <summary>
    /// Folds every Conv -> BatchNormalization pair whose Conv output feeds nothing else and is none of
    /// <paramref name="keep"/> or the graph's outputs; the folded Conv takes the normalization's output name.
    /// </summary>
    /// <returns>The number of pairs folded.</returns>
    public static int Apply(GraphProto graph, GraphEmitter g, IEnumerable<string> keep)
    {
        var kept = GraphAnalysis.KeptTensors(graph, keep);
        var uses = GraphAnalysis.UseCounts(graph);
        var producers = GraphAnalysis.Producers(graph);

        var removed = new HashSet<NodeProto>(ReferenceEqualityComparer.Instance);
        foreach (var bn in graph.Node)
        {
            if (bn.OpType != "BatchNormalization" || !GraphAnalysis.IsDefaultDomain(bn) || bn.Input.Count != 5
                || bn.Output.Count < 1 || bn.Output.Skip(1).Any(o => o.Length > 0)
                || Onnx.OnnxAttributes.GetInt(bn, "training_mode", 0) != 0)
                continue;
            string x = bn.Input[0];
            if (kept.Contains(x) || uses.GetValueOrDefault(x) != 1 || !producers.TryGetValue(x, out var conv)
                || conv.OpType != "Conv" || !GraphAnalysis.IsDefaultDomain(conv) || conv.Output.Count != 1)
                continue;
            var w = g.ConstantValue(conv.Input[1]);
            string? biasName = Rules.RuleContext.Input(conv, 2);
            var b = biasName is null ? null : g.ConstantValue(biasName);
            if (w is null || !IsFloat(w) || w.Dims.Count < 3 || (biasName is not null && (b is null || !IsFloat(b))))
                continue;
            var p = new TensorProto?[4];
            for (int i = 0; i < 4; i++)
                p[i] = g.ConstantValue(bn.Input[1 + i]);
            long channels = w.Dims[0];
            if (p.Any(t => t is null || !IsFloat(t) || Onnx.OnnxTensors.ElementCount(t.Dims) != channels))
                continue;

            float epsilon = Onnx.OnnxAttributes.GetFloat(bn, "epsilon", 1e-5f);
            float[] scale = Onnx.OnnxTensors.ToFloats(p[0]!), beta = Onnx.OnnxTensors.ToFloats(p[1]!);
            float[] mean = Onnx.OnnxTensors.ToFloats(p[2]!), variance = Onnx.OnnxTensors.ToFloats(p[3]!);
            float[] weights = Onnx.OnnxTensors.ToFloats(w);
            float[] bias = b is null ? new float[channels] : Onnx.OnnxTensors.ToFloats(b);
            long perChannel = weights.Length / channels;
            var k = new float[channels];
            for (long c = 0; c < channels; c++)
            {
                k[c] = scale[c] / MathF.Sqrt(variance[c] + epsilon);
                bias[c] = (bias[c] - mean[c]) * k[c] + beta[c];
                System.Numerics.Tensors.TensorPrimitives.Multiply(
                    weights.AsSpan((int)(c * perChannel), (int)perChannel), k[c], weights.AsSpan((int)(c * perChannel), (int)perChannel));
            }
            string foldedWeights = g.FloatTensor(weights, w.Dims.ToArray());
            string foldedBias = g.FloatTensor(bias, [channels]);
            string input = conv.Input[0];
            conv.Input.Clear();
            conv.Input.AddRange([input, foldedWeights, foldedBias]);
            conv.Output[0] = bn.Output[0];
            removed.Add(bn);
        }
        if (removed.Count == 0)
            return 0;
        var remaining = graph.Node.Where(n => !removed.Contains(n)).ToList();
        graph.Node.Clear();
        graph.Node.AddRange(remaining);
        return removed.Count;
    }

    private static bool IsFloat(TensorProto t) => t.DataType == (int)TensorProto.Types.DataType.Float;
}
