using System.Diagnostics;
using System.Text.Json;
using Microsoft.ML.ActivationAtlas.Attribution;
using Microsoft.ML.ActivationAtlas.Extraction;
using Microsoft.ML.ActivationAtlas.Gradients;
using Microsoft.ML.ActivationAtlas.Onnx;
using Microsoft.ML.Data;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.Trainers;

namespace Microsoft.ML.ActivationAtlas.Benchmarks;

/// <summary>
/// <c>attribution</c>: rows per second of class attribution for CIFAR-10 images through ResNet18 + a CIFAR-10 head
/// (trained here with LbfgsMaximumEntropy on pooled features of other images) at the 14x14 layer ReLU347_Output_0:
/// the tangent graph (all classes in one pass) vs one backward pass per class (forward to the layer once, then K
/// runs of the layer->logits reverse-mode graph). Both in the same run, on the same rows.
/// </summary>
internal sealed class AttributionBenchmark : IBenchmark
{
    private const string Layer = "ReLU347_Output_0";
    private const string Features = "Pooling395_Output_0";

    public string Name => "attribution";

    public string Description => "attribution rows/s, tangent graph vs per-class backward: [--images 1000] [--backward-images 200] [--train-per-class 20] [--batch 32] [--threads 2]";

    public int Run(string[] args)
    {
        var a = new BenchmarkArgs(args);
        int images = a.Get("images", 1000), backwardImages = Math.Min(images, a.Get("backward-images", 200));
        int trainPerClass = a.Get("train-per-class", 20), batch = a.Get("batch", 32), threads = a.Get("threads", 2);
        var session = new OnnxSessionOptions { IntraOpThreads = threads };
        var ml = new MLContext(0);
        var resnet = PretrainedModels.ResNet18;

        // Head: trained on images not used for timing (the last trainPerClass of each class).
        var all = Directory.GetDirectories(SharedData.Cifar10Test).Order(StringComparer.Ordinal)
            .Select(d => (Label: Path.GetFileName(d), Files: Directory.GetFiles(d, "*.jpg").Order(StringComparer.Ordinal).ToArray())).ToList();
        var train = all.SelectMany(c => c.Files[^trainPerClass..].Select(f => new Row { ImagePath = f, Label = c.Label })).ToList();
        int perClass = (images + 9) / 10;
        var timed = Enumerable.Range(0, perClass).SelectMany(i => all.Select(c => new Row { ImagePath = c.Files[i], Label = c.Label })).Take(images).ToList();
        var sw = Stopwatch.StartNew();
        var trainData = ml.Data.LoadFromEnumerable(train);
        var featurized = ml.Transforms.LoadImages("Image", null, "ImagePath").Append(ml.Transforms.ResizeImages("Image", 224, 224, "Image"))
            .Append(ml.Transforms.ExtractActivations(new ActivationExtractingEstimator.Options
            {
                Model = resnet, Layers = [Features], OutputColumnNames = ["Features"], Sampling = ActivationSampling.SpatialMean, Session = session,
            }))
            .Fit(trainData).Transform(trainData);
        var cached = ml.Data.Cache(featurized, "Features", "Label");
        var trained = ml.Transforms.Conversion.MapValueToKey("LabelKey", "Label")
            .Append(ml.MulticlassClassification.Trainers.LbfgsMaximumEntropy("LabelKey", "Features")).Fit(cached);
        VBuffer<ReadOnlyMemory<char>> keys = default;
        trained.Transform(cached).Schema["LabelKey"].GetKeyValues(ref keys);
        var names = keys.DenseValues().Select(k => k.ToString()).ToArray();
        var network = ClassifierHead.Attach(resnet.Network, Features, trained.LastTransformer.Model, names);
        var classifier = ActivationModel.FromBytes(OnnxModelIO.ToBytes(network), resnet.Preprocessing, OnnxModelIO.ToBytes(resnet.PreprocessingModel!));
        Console.WriteLine($"head trained on {train.Count} images in {sw.Elapsed.TotalSeconds:F0} s");

        // Pixels and positions of the timed rows.
        using var engine = new AttributionEngine(classifier, Layer, null, session);
        int length = engine.Converter.Length, k = engine.ClassCount, h = engine.Layer.Height, w = engine.Layer.Width, c = engine.Layer.Channels;
        var timedData = ml.Data.LoadFromEnumerable(timed);
        var loaded = ml.Transforms.LoadImages("Image", null, "ImagePath").Append(ml.Transforms.ResizeImages("Image", 224, 224, "Image"))
            .Fit(timedData).Transform(timedData);
        var pixels = new float[images * length];
        int row = 0;
        foreach (var image in loaded.GetColumn<MLImage>("Image"))
        {
            if (engine.Converter.FromImage(image, pixels.AsSpan(row * length, length)) is { } error)
                throw new InvalidDataException($"{timed[row].ImagePath}: {error}");
            row++;
        }
        var rng = new Random(0);
        var positions = new int[2 * images];
        for (int i = 0; i < images; i++) { positions[2 * i] = rng.Next(1, h - 1); positions[2 * i + 1] = rng.Next(1, w - 1); }

        // Tangent graph: all classes in one pass.
        var tangent = new float[images * k];
        var slot = new float[batch * length];
        sw.Restart();
        for (int start = 0; start < images; start += batch)
        {
            int count = Math.Min(batch, images - start);
            Array.Copy(pixels, start * length, slot, 0, count * length);
            engine.Run(slot, positions.AsSpan(2 * start, 2 * count), count, tangent.AsSpan(start * k, count * k));
        }
        double tangentSeconds = sw.Elapsed.TotalSeconds;
        Console.WriteLine($"tangent graph: {images} rows in {tangentSeconds:F1} s");

        // One backward pass per class: forward to the layer once per batch, then K reverse-mode runs layer <- logits.
        var net = OnnxGraphSurgery.MakeBatchDynamic(classifier.Network);
        string netInput = OnnxGraphSurgery.RealInputs(net.Graph).Single();
        var toLayer = GradientGraphBuilder.BuildVjp(net, new VjpOptions { Of = ClassifierHead.LogitsName, WithRespectTo = Layer, CutAtWithRespectTo = true });
        using var pre = OnnxSessionFactory.Create(OnnxGraphSurgery.MakeBatchDynamic(classifier.PreprocessingModel!), session);
        using var head = OnnxSessionFactory.Create(OnnxGraphSurgery.CutInputToLayer(net, Layer), session);
        using var backward = OnnxSessionFactory.Create(toLayer, session);
        var backwardResult = new float[backwardImages * k];
        using var runOptions = new RunOptions();
        sw.Restart();
        for (int start = 0; start < backwardImages; start += batch)
        {
            int count = Math.Min(batch, backwardImages - start);
            using var input = OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, new Memory<float>(pixels, start * length, count * length), [count, 3, 224, 224]);
            using var preOut = pre.Run(runOptions, [pre.InputMetadata.Keys.First()], [input], [pre.OutputMetadata.Keys.First()]);
            using var layerOut = head.Run(runOptions, [head.InputMetadata.Keys.First()], [preOut[0]], [head.OutputMetadata.Keys.First()]);
            var layer = layerOut[0].GetTensorDataAsSpan<float>().ToArray();
            for (int cls = 0; cls < k; cls++)
            {
                var seed = new float[count * k];
                for (int n = 0; n < count; n++) seed[n * k + cls] = 1f;
                using var layerValue = OrtValue.CreateTensorValueFromMemory(layer, [count, c, h, w]);
                using var seedValue = OrtValue.CreateTensorValueFromMemory(seed, [count, k]);
                using var r = backward.Run(runOptions, [Layer, "vjp_seed"], [layerValue, seedValue], ["vjp_gradient"]);
                var g = r[0].GetTensorDataAsSpan<float>();
                for (int n = 0; n < count; n++)
                {
                    int y = positions[2 * (start + n)], x = positions[2 * (start + n) + 1];
                    double s = 0;
                    for (int ch = 0; ch < c; ch++)
                    {
                        int idx = ((n * c + ch) * h + y) * w + x;
                        s += (double)g[idx] * layer[idx];
                    }
                    backwardResult[(start + n) * k + cls] = (float)s;
                }
            }
        }
        double backwardSeconds = sw.Elapsed.TotalSeconds;
        Console.WriteLine($"per-class backward: {backwardImages} rows in {backwardSeconds:F1} s");

        double maxRef = 0, maxDiff = 0;
        for (int i = 0; i < backwardImages * k; i++)
        {
            maxRef = Math.Max(maxRef, Math.Abs(backwardResult[i]));
            maxDiff = Math.Max(maxDiff, Math.Abs(backwardResult[i] - tangent[i]));
        }
        double tangentRate = images / tangentSeconds, backwardRate = backwardImages / backwardSeconds;
        Console.WriteLine(JsonSerializer.Serialize(new Dictionary<string, object>
        {
            ["benchmark"] = "attribution",
            ["model"] = "resnet18 with cifar10 head",
            ["layer"] = Layer,
            ["classes"] = k,
            ["rows_tangent"] = images,
            ["rows_backward"] = backwardImages,
            ["threads"] = threads,
            ["tangent_rows_per_s"] = Math.Round(tangentRate, 2),
            ["backward_per_class_rows_per_s"] = Math.Round(backwardRate, 2),
            ["speedup"] = Math.Round(tangentRate / backwardRate, 2),
            ["max_rel_diff"] = maxDiff / maxRef,
        }));
        return 0;
    }

    private sealed class Row
    {
        public string ImagePath { get; set; } = "";
        public string Label { get; set; } = "";
    }
}
