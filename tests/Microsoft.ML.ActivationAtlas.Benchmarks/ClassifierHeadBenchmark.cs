using System.Diagnostics;
using System.Text.Json;
using Microsoft.ML.ActivationAtlas.Attribution;
using Microsoft.ML.ActivationAtlas.Extraction;
using Microsoft.ML.ActivationAtlas.Onnx;
using Microsoft.ML.Data;

namespace Microsoft.ML.ActivationAtlas.Benchmarks;

/// <summary>
/// <c>classifier-head</c>: CIFAR-10 test accuracy of a LbfgsMaximumEntropy head on ResNet18 pooled features,
/// trained on the first images of each class and tested on the next ones, and agreement of the attached ONNX head
/// (logits/probabilities) with ML.NET's scores.
/// </summary>
internal sealed class ClassifierHeadBenchmark : IBenchmark
{
    public string Name => "classifier-head";

    public string Description => "CIFAR-10 accuracy of the ResNet18 + max-entropy head: [--train-per-class 100] [--test-per-class 100] [--threads 2]";

    public int Run(string[] args)
    {
        var a = new BenchmarkArgs(args);
        int trainPerClass = a.Get("train-per-class", 100), testPerClass = a.Get("test-per-class", 100), threads = a.Get("threads", 2);
        const string features = "Pooling395_Output_0";
        var ml = new MLContext(0);
        var resnet = PretrainedModels.ResNet18;
        var classes = Directory.GetDirectories(SharedData.Cifar10Test).Order(StringComparer.Ordinal)
            .Select(d => (Label: Path.GetFileName(d), Files: Directory.GetFiles(d, "*.jpg").Order(StringComparer.Ordinal).ToArray())).ToList();
        var train = classes.SelectMany(c => c.Files.Take(trainPerClass).Select(f => new Row { ImagePath = f, Label = c.Label })).ToList();
        var test = classes.SelectMany(c => c.Files.Skip(trainPerClass).Take(testPerClass).Select(f => new Row { ImagePath = f, Label = c.Label })).ToList();
        var featurize = ml.Transforms.LoadImages("Image", null, "ImagePath").Append(ml.Transforms.ResizeImages("Image", 224, 224, "Image"))
            .Append(ml.Transforms.ExtractActivations(new ActivationExtractingEstimator.Options
            {
                Model = resnet, Layers = [features], OutputColumnNames = ["Features"], Sampling = ActivationSampling.SpatialMean,
                Session = new OnnxSessionOptions { IntraOpThreads = threads },
            }));
        var sw = Stopwatch.StartNew();
        IDataView Featurize(List<Row> rows)
        {
            var data = ml.Data.LoadFromEnumerable(rows);
            return ml.Data.Cache(featurize.Fit(data).Transform(data), "Features", "Label");
        }
        var trainData = Featurize(train);
        var testData = Featurize(test);
        var trained = ml.Transforms.Conversion.MapValueToKey("LabelKey", "Label")
            .Append(ml.MulticlassClassification.Trainers.LbfgsMaximumEntropy("LabelKey", "Features")).Fit(trainData);
        var scored = trained.Transform(testData);
        var metrics = ml.MulticlassClassification.Evaluate(scored, "LabelKey");
        Console.WriteLine($"features and training: {sw.Elapsed.TotalSeconds:F0} s; accuracy {metrics.MicroAccuracy:P1}");

        // The attached head applied to the same pooled features equals ML.NET's scores.
        VBuffer<ReadOnlyMemory<char>> keys = default;
        scored.Schema["LabelKey"].GetKeyValues(ref keys);
        var names = keys.DenseValues().Select(k => k.ToString()).ToArray();
        var network = ClassifierHead.Attach(resnet.Network, features, trained.LastTransformer.Model, names);
        var head = OnnxGraphSurgery.MakeBatchDynamic(OnnxGraphSurgery.CutLayerToOutputs(network, features));
        using var session = OnnxSessionFactory.Create(head);
        var x = scored.GetColumn<VBuffer<float>>("Features").Select(v => v.DenseValues().ToArray()).ToList();
        var scores = scored.GetColumn<VBuffer<float>>("Score").Select(v => v.DenseValues().ToArray()).ToList();
        var flat = x.SelectMany(v => v).ToArray();
        var r = session.RunFloat(new Dictionary<string, OnnxFloatTensor> { [session.InputMetadata.Keys.First()] = new(flat, [x.Count, x[0].Length, 1, 1]) },
            [ClassifierHead.ProbabilitiesName])[ClassifierHead.ProbabilitiesName].Data;
        double worst = 0;
        for (int i = 0; i < scores.Count; i++)
            for (int k = 0; k < scores[i].Length; k++)
                worst = Math.Max(worst, Math.Abs(r[i * scores[i].Length + k] - scores[i][k]) / Math.Max(Math.Abs(scores[i][k]), 1e-3));
        Console.WriteLine(JsonSerializer.Serialize(new Dictionary<string, object>
        {
            ["benchmark"] = "classifier-head",
            ["model"] = "resnet18 pooled features",
            ["train_images"] = train.Count,
            ["test_images"] = test.Count,
            ["accuracy"] = Math.Round(metrics.MicroAccuracy, 4),
            ["head_vs_mlnet_max_rel_diff"] = worst,
        }));
        return 0;
    }

    private sealed class Row
    {
        public string ImagePath { get; set; } = "";
        public string Label { get; set; } = "";
    }
}
