using Google.Protobuf;
using Microsoft.ML.ActivationAtlas.Attribution;
using Microsoft.ML.ActivationAtlas.Extraction;
using Microsoft.ML.Data;
using Microsoft.ML.Trainers;

namespace Microsoft.ML.ActivationAtlas.Building;

/// <summary>
/// Trains the linear class head of <see cref="AtlasHeadKind.Train"/>: a multinomial logistic regression on the
/// labelled images' spatially averaged layer activations, attached to the network after the layer
/// (<see cref="ClassifierHead.Attach(Onnx.Protobuf.ModelProto, string, MaximumEntropyModelParameters, IReadOnlyList{string})"/>).
/// </summary>
internal static class LinearHeadTrainer
{
    /// <summary>
    /// The network with the trained head attached; <paramref name="classNames"/> in the head's class order and
    /// <paramref name="head"/> its weights and biases, row-major <c>[classes, features + 1]</c> (the bias last), as
    /// <see cref="Attach"/> takes them back.
    /// </summary>
    public static ActivationModel Train(MLContext ml, ActivationModel model, string layer, float[] features, int dim, IReadOnlyList<string> labels,
        out string[] classNames, out float[] head)
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
        VBuffer<ReadOnlyMemory<char>> keys = default;
        fitted.Transform(data).Schema["Key"].GetKeyValues(ref keys);
        classNames = keys.DenseValues().Select(k => k.ToString()).ToArray();
        var (weights, biases) = ClassifierHead.Weights(fitted.LastTransformer.Model);
        int k = biases.Length;
        head = new float[k * (dim + 1)];
        for (int i = 0; i < k; i++)
        {
            weights.AsSpan(i * dim, dim).CopyTo(head.AsSpan(i * (dim + 1)));
            head[i * (dim + 1) + dim] = biases[i];
        }
        return Attach(model, layer, head, classNames);
    }

    /// <summary>The network with a head kept by <see cref="Train"/> attached after <paramref name="layer"/>.</summary>
    public static ActivationModel Attach(ActivationModel model, string layer, float[] head, IReadOnlyList<string> classNames)
    {
        int k = classNames.Count, width = head.Length / Math.Max(1, k), dim = width - 1;
        if (k == 0 || head.Length != k * width || dim < 1)
            throw new InvalidDataException($"A stored class head of {head.Length} values does not fit {k} classes.");
        var weights = new float[k * dim];
        var biases = new float[k];
        for (int i = 0; i < k; i++)
        {
            head.AsSpan(i * width, dim).CopyTo(weights.AsSpan(i * dim));
            biases[i] = head[i * width + dim];
        }
        var network = ClassifierHead.Attach(model.Network, layer, weights, biases, classNames);
        return ActivationModel.FromBytes(network.ToByteArray(), model.Preprocessing, model.PreprocessingModel?.ToByteArray());
    }

    private sealed class Example
    {
        public float[] Features { get; set; } = [];

        public string Label { get; set; } = "";
    }
}
