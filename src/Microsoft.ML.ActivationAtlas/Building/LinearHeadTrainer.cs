using Google.Protobuf;
using Microsoft.ML.ActivationAtlas.Attribution;
using Microsoft.ML.ActivationAtlas.Extraction;
using Microsoft.ML.ActivationAtlas.Onnx;
using Microsoft.ML.Data;
using Microsoft.ML.Trainers;

namespace Microsoft.ML.ActivationAtlas.Building;

/// <summary>
/// Trains the linear class head of <see cref="AtlasHeadKind.Train"/>: a multinomial logistic regression on the
/// labelled images' spatially averaged layer activations (on a token layer, the mean of its patch tokens), attached to the network after the layer
/// (<see cref="ClassifierHead.Attach(Onnx.Protobuf.ModelProto, string, MaximumEntropyModelParameters, IReadOnlyList{string})"/>).
/// </summary>
internal static class LinearHeadTrainer
{
    /// <summary>The network with the trained head attached; <paramref name="classNames"/> in the head's class order.</summary>
    public static ActivationModel Train(MLContext ml, ActivationModel model, string layer, float[] features, int dim, IReadOnlyList<string> labels,
        out string[] classNames)
    {
        var head = TrainWeights(ml, features, dim, labels);
        classNames = head.ClassNames;
        return Attach(model, layer, head);
    }

    /// <summary>The network with <paramref name="head"/> attached after <paramref name="layer"/>'s spatial mean.</summary>
    public static ActivationModel Attach(ActivationModel model, string layer, LinearHead head) =>
        WithNetwork(model, ClassifierHead.Attach(model.Network, layer, head.Weights, head.Biases, head.ClassNames));

    /// <summary>
    /// The network with <paramref name="head"/> attached after <paramref name="layer"/>'s spatial mean, or for a token
    /// layer the mean of its patch tokens.
    /// </summary>
    public static ActivationModel Attach(ActivationModel model, OnnxLayerInfo layer, LinearHead head) =>
        WithNetwork(model, ClassifierHead.Attach(model.Network, layer, head.Weights, head.Biases, head.ClassNames));

    private static ActivationModel WithNetwork(ActivationModel model, Onnx.Protobuf.ModelProto network) =>
        ActivationModel.FromBytes(network.ToByteArray(), model.Preprocessing, model.PreprocessingModel?.ToByteArray());

    /// <summary>The head alone: weights [classes, dim], biases and class names (in the label keys' order).</summary>
    public static LinearHead TrainWeights(MLContext ml, float[] features, int dim, IReadOnlyList<string> labels)
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
        var classNames = keys.DenseValues().Select(k => k.ToString()).ToArray();
        VBuffer<float>[] weightRows = [];
        fitted.LastTransformer.Model.GetWeights(ref weightRows, out int k);
        var weights = new float[k * dim];
        for (int i = 0; i < k; i++)
            weightRows[i].DenseValues().ToArray().CopyTo(weights, i * dim);
        return new LinearHead(weights, fitted.LastTransformer.Model.GetBiases().ToArray(), classNames);
    }

    private sealed class Example
    {
        public float[] Features { get; set; } = [];

        public string Label { get; set; } = "";
    }
}

/// <summary>A linear class head on a layer's spatial mean (a token layer's patch-token mean): logits = W . mean + b.</summary>
/// <param name="Weights">Row-major [classes, dim].</param>
/// <param name="Biases">One per class.</param>
/// <param name="ClassNames">The classes, in the rows' order.</param>
internal sealed record LinearHead(float[] Weights, float[] Biases, string[] ClassNames)
{
    /// <summary>The input width.</summary>
    public int Dim => Weights.Length / Biases.Length;

    /// <summary>The top class of one spatial mean.</summary>
    public int Predict(ReadOnlySpan<float> mean)
    {
        int best = 0, dim = Dim;
        float top = float.NegativeInfinity;
        for (int k = 0; k < Biases.Length; k++)
        {
            float logit = System.Numerics.Tensors.TensorPrimitives.Dot(Weights.AsSpan(k * dim, dim), mean) + Biases[k];
            if (logit > top)
            {
                top = logit;
                best = k;
            }
        }
        return best;
    }

    /// <summary>
    /// A nearest-class-direction head for an atlas without a trained one: class k's weights are the unit mean of the
    /// features of the rows whose largest class value is k (label shares: the rows labelled k), bias 0; a class no row
    /// leads gets bias minus infinity.
    /// </summary>
    /// <param name="features">Row-major <c>[rows, dim]</c>.</param>
    /// <param name="dim">Features per row.</param>
    /// <param name="classValues">Row-major <c>[rows, classNames.Length]</c>.</param>
    /// <param name="classNames">The classes.</param>
    public static LinearHead ClassCentroids(ReadOnlySpan<float> features, int dim, ReadOnlySpan<float> classValues, string[] classNames)
    {
        int k = classNames.Length, rows = features.Length / dim;
        var weights = new float[k * dim];
        var biases = new float[k];
        var counts = new int[k];
        for (int r = 0; r < rows; r++)
        {
            var values = classValues.Slice(r * k, k);
            int top = System.Numerics.Tensors.TensorPrimitives.IndexOfMax(values);
            if (!(values[top] > 0))
                continue;
            System.Numerics.Tensors.TensorPrimitives.Add(weights.AsSpan(top * dim, dim), features.Slice(r * dim, dim), weights.AsSpan(top * dim, dim));
            counts[top]++;
        }
        for (int c = 0; c < k; c++)
        {
            var w = weights.AsSpan(c * dim, dim);
            float norm = System.Numerics.Tensors.TensorPrimitives.Norm(w);
            if (counts[c] == 0 || norm == 0)
                biases[c] = float.NegativeInfinity;
            else
                System.Numerics.Tensors.TensorPrimitives.Multiply(w, 1f / norm, w);
        }
        return new LinearHead(weights, biases, classNames);
    }

    /// <summary>Weights and biases as one [classes, dim + 1] matrix (biases last), as the stage store keeps them.</summary>
    public float[] Packed()
    {
        int dim = Dim, k = Biases.Length;
        var packed = new float[k * (dim + 1)];
        for (int i = 0; i < k; i++)
        {
            Weights.AsSpan(i * dim, dim).CopyTo(packed.AsSpan(i * (dim + 1)));
            packed[i * (dim + 1) + dim] = Biases[i];
        }
        return packed;
    }

    /// <summary>The head from <see cref="Packed"/>.</summary>
    public static LinearHead Unpack(float[] packed, int classes, int columns, string[] classNames)
    {
        int dim = columns - 1;
        var weights = new float[classes * dim];
        var biases = new float[classes];
        for (int i = 0; i < classes; i++)
        {
            packed.AsSpan(i * columns, dim).CopyTo(weights.AsSpan(i * dim));
            biases[i] = packed[i * columns + dim];
        }
        return new LinearHead(weights, biases, classNames);
    }
}
