using Microsoft.ML.ActivationAtlas.Onnx;
using Microsoft.ML.ActivationAtlas.Onnx.Protobuf;
using Microsoft.ML.Data;
using Microsoft.ML.Trainers;

namespace Microsoft.ML.ActivationAtlas.Attribution;

/// <summary>
/// Turns a featurizer network (e.g. the built-in ResNet18, which ends in pooled features) into a classifier by
/// appending a linear head: global average pooling of a feature tensor, a Gemm with the class weights, and a
/// Softmax; the class names go into the model's metadata (<see cref="ClassNames.MetadataKey"/>). The result is a
/// network that extraction, attribution and inversion all accept.
/// </summary>
public static class ClassifierHead
{
    /// <summary>Name of the added logits output [N, K] (made unique, e.g. <c>logits_1</c>, when the network has a tensor of that name).</summary>
    public const string LogitsName = "logits";

    /// <summary>Name of the added probabilities output [N, K] (softmax of the logits; made unique as <see cref="LogitsName"/>).</summary>
    public const string ProbabilitiesName = "probabilities";

    /// <summary>
    /// Appends logits = W . pool(features) + b and probabilities = softmax(logits). The new outputs come first
    /// (logits is output 0); the network's own outputs are kept after them.
    /// </summary>
    /// <param name="network">The featurizer; not modified.</param>
    /// <param name="featureTensor">The [N, C, H, W] (or [N, C]) feature tensor the head reads.</param>
    /// <param name="weights">Row-major [K, C] class weights.</param>
    /// <param name="biases">K biases.</param>
    /// <param name="classNames">K class names.</param>
    public static ModelProto Attach(ModelProto network, string featureTensor, float[] weights, float[] biases, IReadOnlyList<string> classNames) =>
        Attach(network, featureTensor, null, weights, biases, classNames);

    /// <summary>
    /// Appends logits = W . pool(layer) + b and probabilities = softmax(logits) after a layer found by
    /// <see cref="OnnxLayers.Probe"/>: a spatial layer [N, C, H, W] is averaged over H x W (GlobalAveragePool), a
    /// token layer ([N, T, C] or [N, C, T], <see cref="OnnxLayerInfo.Tokens"/>) over its G x G patch tokens (a MatMul
    /// with a constant pooling vector, 1 / G^2 at each patch token and 0 at the class and register tokens). The new
    /// outputs come first (logits is output 0); the network's own outputs are kept after them.
    /// </summary>
    /// <param name="network">The network containing the layer; not modified.</param>
    /// <param name="layer">The layer the head reads (spatial or token layer).</param>
    /// <param name="weights">Row-major [K, C] class weights.</param>
    /// <param name="biases">K biases.</param>
    /// <param name="classNames">K class names.</param>
    public static ModelProto Attach(ModelProto network, OnnxLayerInfo layer, float[] weights, float[] biases, IReadOnlyList<string> classNames)
    {
        ArgumentNullException.ThrowIfNull(layer);
        if (!layer.IsSelectable)
            throw new ArgumentException($"Layer '{layer.Name}' {layer.ShapeText} is neither a spatial layer nor a token layer: a class head cannot pool it.", nameof(layer));
        return Attach(network, layer.Name, layer.Tokens is null ? null : layer, weights, biases, classNames);
    }

    private static ModelProto Attach(ModelProto network, string featureTensor, OnnxLayerInfo? tokenLayer, float[] weights, float[] biases, IReadOnlyList<string> classNames)
    {
        ArgumentNullException.ThrowIfNull(network);
        ArgumentNullException.ThrowIfNull(weights);
        ArgumentNullException.ThrowIfNull(biases);
        ArgumentNullException.ThrowIfNull(classNames);
        int k = biases.Length;
        if (k == 0 || classNames.Count != k)
            throw new ArgumentException($"{k} biases and {classNames.Count} class names: one of each per class is needed.");
        if (weights.Length % k != 0)
            throw new ArgumentException($"{weights.Length} weights do not form a [{k}, C] matrix.");
        int c = weights.Length / k;
        var model = network.Clone();
        var graph = model.Graph;
        if (!graph.Node.Any(n => n.Output.Contains(featureTensor)) && !graph.Input.Any(i => i.Name == featureTensor))
            throw new ArgumentException($"The feature tensor '{featureTensor}' is not a tensor of the network.");
        var b = new OnnxGraphBuilder(graph);
        // A network that is a classifier already (its own 'logits') gets the head's outputs under unique names.
        string logits = b.UniqueName(LogitsName), probabilities = b.UniqueName(ProbabilitiesName);
        string pooled = tokenLayer is { Tokens: { } tokens }
            ? b.Node("MatMul", tokens.ChannelsFirst
                ? [featureTensor, b.Initializer("head_token_pool", PatchPooling(tokenLayer), tokenLayer.TokenCount, 1)]
                : [b.Initializer("head_token_pool", PatchPooling(tokenLayer), 1, tokenLayer.TokenCount), featureTensor])
            : b.Node("GlobalAveragePool", [featureTensor]);
        string flat = b.Node("Flatten", [pooled], OnnxAttributes.Int("axis", 1));
        string w = b.Initializer("head_weights", weights, k, c);
        string bias = b.Initializer("head_biases", biases, k);
        b.NodeWithOutputs("Gemm", [flat, w, bias], [logits], OnnxAttributes.Int("transB", 1));
        b.NodeWithOutputs("Softmax", [logits], [probabilities], OnnxAttributes.Int("axis", 1));
        var outputs = graph.Output.ToList();
        graph.Output.Clear();
        graph.Output.Add(OnnxValueInfo.Float(logits, null, k));
        graph.Output.Add(OnnxValueInfo.Float(probabilities, null, k));
        graph.Output.AddRange(outputs);
        ClassNames.Write(model, classNames);
        return model;
    }

    /// <summary>The token pooling vector of a token layer: 1 / G^2 at each patch token, 0 at the leading tokens.</summary>
    private static float[] PatchPooling(OnnxLayerInfo layer)
    {
        var pool = new float[layer.TokenCount];
        int prefix = layer.Tokens!.PrefixTokens, patches = layer.TokenCount - prefix;
        pool.AsSpan(prefix).Fill(1f / patches);
        return pool;
    }

    /// <summary>
    /// Appends the head of a trained ML.NET maximum-entropy (multinomial logistic regression) classifier, e.g.
    /// from <c>mlContext.MulticlassClassification.Trainers.LbfgsMaximumEntropy()</c>, trained on the (pooled)
    /// activations of <paramref name="featureTensor"/>; its probabilities then equal ML.NET's scores.
    /// </summary>
    /// <param name="network">The featurizer; not modified.</param>
    /// <param name="featureTensor">The feature tensor the classifier was trained on (spatially averaged).</param>
    /// <param name="classifier">The trained model parameters.</param>
    /// <param name="classNames">The class names in the classifier's class order (the label keys' order).</param>
    public static ModelProto Attach(ModelProto network, string featureTensor, MaximumEntropyModelParameters classifier, IReadOnlyList<string> classNames)
    {
        var (weights, biases) = Weights(classifier);
        return Attach(network, featureTensor, weights, biases, classNames);
    }

    /// <summary>A maximum-entropy classifier's weights, row-major <c>[classes, features]</c>, and biases.</summary>
    internal static (float[] Weights, float[] Biases) Weights(MaximumEntropyModelParameters classifier)
    {
        ArgumentNullException.ThrowIfNull(classifier);
        VBuffer<float>[] rows = [];
        classifier.GetWeights(ref rows, out int k);
        var biases = classifier.GetBiases().ToArray();
        int c = rows[0].Length;
        var weights = new float[k * c];
        for (int i = 0; i < k; i++)
            rows[i].DenseValues().ToArray().CopyTo(weights, i * c);
        return (weights, biases);
    }
}
