using Google.Protobuf;
using Microsoft.ML.ActivationAtlas.Attribution;
using Microsoft.ML.ActivationAtlas.Extraction;
using Microsoft.ML.Data;
using Microsoft.ML.Trainers;

namespace Microsoft.ML.ActivationAtlas.Cli.Building;

/// <summary>
/// The classifier an atlas's attributions are computed against: an ONNX classifier given by the user, or a linear head
/// trained here on the spatially averaged layer activations of the labelled images (the first-level sub-folder names)
/// and attached to the network after the layer.
/// </summary>
internal static class ClassHead
{
    /// <summary>
    /// Trains a multinomial logistic regression on (features, label) and attaches it to the network after
    /// <paramref name="layer"/>; also gives the class names and the row-major [K, C] class weights.
    /// </summary>
    public static ActivationModel Train(MLContext ml, ActivationModel model, string layer, float[] features, int dim, IReadOnlyList<string> labels,
        out string[] classNames, out float[] weights)
    {
        var rows = Enumerable.Range(0, labels.Count).Where(i => labels[i].Length > 0)
            .Select(i => new Example { Features = features.AsSpan(i * dim, dim).ToArray(), Label = labels[i] }).ToArray();
        if (rows.Select(r => r.Label).Distinct().Count() < 2)
            throw new InvalidOperationException("Training a class head needs images of at least two classes in class sub-folders of the image folder.");
        var schema = SchemaDefinition.Create(typeof(Example));
        schema[nameof(Example.Features)].ColumnType = new VectorDataViewType(NumberDataViewType.Single, dim);
        var data = ml.Data.LoadFromEnumerable(rows, schema);
        var pipeline = ml.Transforms.Conversion.MapValueToKey("Key", nameof(Example.Label), keyOrdinality: Transforms.ValueToKeyMappingEstimator.KeyOrdinality.ByValue)
            .Append(ml.MulticlassClassification.Trainers.LbfgsMaximumEntropy(new LbfgsMaximumEntropyMulticlassTrainer.Options
            {
                LabelColumnName = "Key",
                FeatureColumnName = nameof(Example.Features),
                L2Regularization = 1e-3f,
                MaximumNumberOfIterations = 200,
            }));
        var fitted = pipeline.Fit(data);
        var keyColumn = fitted.Transform(data).Schema["Key"];
        VBuffer<ReadOnlyMemory<char>> keys = default;
        keyColumn.GetKeyValues(ref keys);
        classNames = keys.DenseValues().Select(k => k.ToString()).ToArray();
        var parameters = fitted.LastTransformer.Model;
        VBuffer<float>[] weightRows = [];
        parameters.GetWeights(ref weightRows, out int k);
        weights = new float[k * dim];
        for (int c = 0; c < k; c++)
            weightRows[c].DenseValues().ToArray().CopyTo(weights, c * dim);
        var network = ClassifierHead.Attach(model.Network, layer, weights, parameters.GetBiases().ToArray(), classNames);
        return ActivationModel.FromBytes(network.ToByteArray(), model.Preprocessing, model.PreprocessingModel?.ToByteArray());
    }

    /// <summary>
    /// The attribution of activation vectors to the classes of a head trained by <see cref="Train"/>,
    /// without running the network. The head reads the layer only through its spatial mean, so a logit's gradient at
    /// any position is the class's weight row over the number of positions, and h . d(logit_c)/dh = (W_c . h) / (H W).
    /// </summary>
    /// <param name="activations">Row-major [rows, C] activation vectors (one position of the layer each).</param>
    /// <param name="rows">Number of vectors.</param>
    /// <param name="weights">Row-major [K, C] class weights.</param>
    /// <param name="positions">The layer's H x W.</param>
    /// <returns>Row-major [rows, K] attributions.</returns>
    public static float[] Attribute(float[] activations, int rows, float[] weights, int positions)
    {
        int dim = activations.Length / Math.Max(1, rows);
        int k = weights.Length / dim;
        var result = new float[rows * k];
        float scale = 1f / positions;
        Parallel.For(0, rows, i =>
        {
            var h = activations.AsSpan(i * dim, dim);
            for (int c = 0; c < k; c++)
                result[i * k + c] = System.Numerics.Tensors.TensorPrimitives.Dot(weights.AsSpan(c * dim, dim), h) * scale;
        });
        return result;
    }

    private sealed class Example
    {
        public float[] Features { get; set; } = [];

        public string Label { get; set; } = "";
    }
}
