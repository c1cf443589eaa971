using Microsoft.ML.ActivationAtlas.Attribution;
using Microsoft.ML.ActivationAtlas.Extraction;
using Microsoft.ML.ActivationAtlas.Onnx;
using Microsoft.ML.ActivationAtlas.Onnx.Protobuf;
using Microsoft.ML.ActivationAtlas.Tests.Infrastructure;
using Microsoft.ML.Data;
using Microsoft.ML.Trainers;

namespace Microsoft.ML.ActivationAtlas.Tests.Gradients;

/// <summary>
/// ResNet18 pooled features of CIFAR-10 images (computed once per test run), a maximum-entropy classifier trained
/// on part of them with ML.NET, and the classifier network with that head attached.
/// </summary>
public sealed class CifarClassifierFixture
{
    public const int TrainPerClass = 10;
    public const int TestPerClass = 4;
    public const string FeatureTensor = "Pooling395_Output_0";

    public CifarClassifierFixture()
    {
        Ml = new MLContext(seed: 0);
        var all = SharedData.CifarImages(TrainPerClass + TestPerClass);
        var train = all.Where((p, i) => i % (TrainPerClass + TestPerClass) < TrainPerClass).ToList();
        var test = all.Where((p, i) => i % (TrainPerClass + TestPerClass) >= TrainPerClass).ToList();
        TestImages = test;

        var resnet = PretrainedModels.ResNet18;
        var featurize = Ml.Transforms.ExtractActivations(new ActivationExtractingEstimator.Options
        {
            Model = resnet,
            Layers = [FeatureTensor],
            OutputColumnNames = ["Features"],
            Sampling = ActivationSampling.SpatialMean,
        });
        IDataView Load(IEnumerable<(string Path, string Label)> rows)
        {
            var data = Ml.Data.LoadFromEnumerable(rows.Select(r => new ImageRow { ImagePath = r.Path, Label = r.Label }));
            var images = Ml.Transforms.LoadImages("Image", null, nameof(ImageRow.ImagePath))
                .Append(Ml.Transforms.ResizeImages("Image", 224, 224, "Image")).Fit(data).Transform(data);
            var featurized = featurize.Fit(images).Transform(images);
            return Ml.Data.Cache(featurized, "Features", "Label", "ImagePath");
        }
        TrainData = Load(train);
        TestData = Load(test);

        var pipeline = Ml.Transforms.Conversion.MapValueToKey("LabelKey", "Label")
            .Append(Ml.MulticlassClassification.Trainers.LbfgsMaximumEntropy(new LbfgsMaximumEntropyMulticlassTrainer.Options
            {
                LabelColumnName = "LabelKey",
                FeatureColumnName = "Features",
                L2Regularization = 1e-2f,
                MaximumNumberOfIterations = 200,
            }));
        Trained = pipeline.Fit(TrainData);
        var parameters = Trained.LastTransformer.Model;
        VBuffer<ReadOnlyMemory<char>> keys = default;
        Trained.Transform(TrainData).Schema["LabelKey"].GetKeyValues(ref keys);
        ClassNames = keys.DenseValues().Select(k => k.ToString()).ToArray();

        Network = ClassifierHead.Attach(resnet.Network, FeatureTensor, parameters, ClassNames);
        Classifier = ActivationModel.FromBytes(OnnxModelIO.ToBytes(Network), resnet.Preprocessing,
            OnnxModelIO.ToBytes(resnet.PreprocessingModel!));
    }

    public MLContext Ml { get; }
    public IDataView TrainData { get; }
    public IDataView TestData { get; }
    public IReadOnlyList<(string Path, string Label)> TestImages { get; }
    public TransformerChain<MulticlassPredictionTransformer<MaximumEntropyModelParameters>> Trained { get; }
    public string[] ClassNames { get; }
    public ModelProto Network { get; }
    public ActivationModel Classifier { get; }

    public sealed class ImageRow
    {
        public string ImagePath { get; set; } = "";
        public string Label { get; set; } = "";
    }
}
