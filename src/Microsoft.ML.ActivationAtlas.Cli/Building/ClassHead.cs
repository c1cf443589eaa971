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
    /// <summary>Trains a multinomial logistic regression on (features, label) and attaches it to the network after <paramref name="layer"/>.</summary>
    public static ActivationModel Train(MLContext ml, ActivationModel model, string layer, float[] features, int dim, IReadOnlyList<string> labels, out string[] classNames)
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
        var network = ClassifierHead.Attach(model.Network, layer, parameters, classNames);
        return ActivationModel.FromBytes(network.ToByteArray(), model.Preprocessing, model.PreprocessingModel?.ToByteArray());
    }

    private sealed class Example
    {
        public float[] Features { get; set; } = [];

        public string Label { get; set; } = "";
    }
}
