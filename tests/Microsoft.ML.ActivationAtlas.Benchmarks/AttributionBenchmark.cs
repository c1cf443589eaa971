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
/// the tangent graph (all classes in one pass) vs the best reverse-mode way (one forward pass to the layer, then one
/// batched run of the layer &lt;- logits VJP graph with the K one-hot seeds stacked), and PyTorch's reverse mode
/// (<c>autograd.grad(..., is_grads_batched=True)</c>, Python/time_torch_attribution.py) on the same rows, same thread
/// count, each warmed up, alternating rounds, medians. Reports the class count above which forward mode wins.
/// </summary>
internal sealed class AttributionBenchmark : IBenchmark
{
    private const string Layer = "ReLU347_Output_0";
    private const string Features = "Pooling395_Output_0";

    public string Name => "attribution";

    public string Description => "attribution rows/s, tangent graph vs batched reverse mode (ONNX Runtime and PyTorch): [--rows 200] [--rounds 3] [--train-per-class 20] [--batch 8] [--threads 2] [--no-torch]";

    public int Run(string[] args)
    {
        var a = new BenchmarkArgs(args);
        int images = a.Get("rows", 200), rounds = a.Get("rounds", 3);
        int trainPerClass = a.Get("train-per-class", 20), batch = a.Get("batch", 8), threads = a.Get("threads", 2);
        bool torch = !a.Has("no-torch");
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

        // Forward mode: the tangent graph gives all classes in one pass.
        var tangent = new float[images * k];
        var slot = new float[batch * length];
        void Tangent(int start, int count)
        {
            Array.Copy(pixels, start * length, slot, 0, count * length);
            engine.Run(slot, positions.AsSpan(2 * start, 2 * count), count, tangent.AsSpan(start * k, count * k));
        }

        // Reverse mode, the best way: one forward pass to the layer per batch, then one run of the layer <- logits
        // vector-Jacobian graph on the batch stacked K times, replica j seeded with the one-hot vector of class j.
        var net = OnnxGraphSurgery.MakeBatchDynamic(classifier.Network);
        var toLayer = GradientGraphBuilder.BuildVjp(net, new VjpOptions { Of = ClassifierHead.LogitsName, WithRespectTo = Layer, CutAtWithRespectTo = true });
        using var pre = OnnxSessionFactory.Create(OnnxGraphSurgery.MakeBatchDynamic(classifier.PreprocessingModel!), session);
        using var head = OnnxSessionFactory.Create(OnnxGraphSurgery.CutInputToLayer(net, Layer), session);
        using var backward = OnnxSessionFactory.Create(toLayer, session);
        var reverse = new float[images * k];
        using var runOptions = new RunOptions();
        int layerSize = c * h * w;
        var stacked = new float[k * batch * layerSize];
        var seeds = new float[k * batch * k];
        float[] Forward(int start, int count)
        {
            using var input = OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, new Memory<float>(pixels, start * length, count * length), [count, 3, 224, 224]);
            using var preOut = pre.Run(runOptions, [pre.InputMetadata.Keys.First()], [input], [pre.OutputMetadata.Keys.First()]);
            using var layerOut = head.Run(runOptions, [head.InputMetadata.Keys.First()], [preOut[0]], [head.OutputMetadata.Keys.First()]);
            return layerOut[0].GetTensorDataAsSpan<float>().ToArray();
        }
        void Backward(int start, int count, float[] layer)
        {
            Array.Clear(seeds);
            for (int cls = 0; cls < k; cls++)
            {
                Array.Copy(layer, 0, stacked, cls * count * layerSize, count * layerSize);
                for (int n = 0; n < count; n++)
                    seeds[(cls * count + n) * k + cls] = 1f;
            }
            using var layerValue = OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, new Memory<float>(stacked, 0, k * count * layerSize), [k * count, c, h, w]);
            using var seedValue = OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, new Memory<float>(seeds, 0, k * count * k), [k * count, k]);
            using var r = backward.Run(runOptions, [Layer, "vjp_seed"], [layerValue, seedValue], ["vjp_gradient"]);
            var g = r[0].GetTensorDataAsSpan<float>();
            for (int cls = 0; cls < k; cls++)
                for (int n = 0; n < count; n++)
                {
                    int y = positions[2 * (start + n)], x = positions[2 * (start + n) + 1];
                    double sum = 0;
                    for (int ch = 0; ch < c; ch++)
                    {
                        int at = (n * c + ch) * h * w + y * w + x;
                        sum += (double)g[cls * count * layerSize + at] * layer[at];
                    }
                    reverse[(start + n) * k + cls] = (float)sum;
                }
        }

        // Warm-up on both sides (one batch each), then alternating rounds over the same rows; medians.
        int first = Math.Min(batch, images);
        Tangent(0, first);
        Backward(0, first, Forward(0, first));
        var tangentRounds = new List<double>();
        var forwardRounds = new List<double>();
        var backwardRounds = new List<double>();
        for (int round = 0; round < rounds; round++)
        {
            sw.Restart();
            for (int start = 0; start < images; start += batch)
                Tangent(start, Math.Min(batch, images - start));
            tangentRounds.Add(sw.Elapsed.TotalSeconds);
            double forwardSeconds = 0, backwardSeconds = 0;
            for (int start = 0; start < images; start += batch)
            {
                int count = Math.Min(batch, images - start);
                sw.Restart();
                var layer = Forward(start, count);
                forwardSeconds += sw.Elapsed.TotalSeconds;
                sw.Restart();
                Backward(start, count, layer);
                backwardSeconds += sw.Elapsed.TotalSeconds;
            }
            forwardRounds.Add(forwardSeconds);
            backwardRounds.Add(backwardSeconds);
            Console.WriteLine($"round {round + 1}: tangent {tangentRounds[^1]:F1} s, reverse {forwardSeconds + backwardSeconds:F1} s (forward {forwardSeconds:F1} s, batched VJP {backwardSeconds:F1} s) for {images} rows");
        }

        double maxRef = 0, maxDiff = 0;
        for (int i = 0; i < images * k; i++)
        {
            maxRef = Math.Max(maxRef, Math.Abs(reverse[i]));
            maxDiff = Math.Max(maxDiff, Math.Abs(reverse[i] - tangent[i]));
        }
        double tangentS = Comparison.Median(tangentRounds), forwardS = Comparison.Median(forwardRounds), backwardS = Comparison.Median(backwardRounds);
        // Reverse mode costs forward + K x (one class's VJP); forward mode costs the tangent pass whatever K is.
        double vjpPerClass = backwardS / k;
        double crossover = (tangentS - forwardS) / vjpPerClass;
        var result = new Dictionary<string, object>
        {
            ["benchmark"] = "attribution",
            ["model"] = "resnet18 with cifar10 head",
            ["layer"] = Layer,
            ["classes"] = k,
            ["rows"] = images,
            ["batch"] = batch,
            ["threads"] = threads,
            ["rounds"] = rounds,
            ["tangent_rows_per_s"] = Math.Round(images / tangentS, 2),
            ["reverse_batched_rows_per_s"] = Math.Round(images / (forwardS + backwardS), 2),
            ["reverse_forward_s"] = Math.Round(forwardS, 2),
            ["reverse_vjp_s"] = Math.Round(backwardS, 2),
            ["speedup"] = Math.Round((forwardS + backwardS) / tangentS, 2),
            ["crossover_classes"] = Math.Round(crossover, 1),
            ["max_rel_diff"] = maxDiff / maxRef,
        };
        if (torch)
        {
            var py = TorchAttribution(timed.Select(t => t.ImagePath).ToArray(), batch, threads, k, rounds);
            double torchReverse = py["reverse_batched_s"]!.GetValue<double>(), torchForward = py["forward_s"]!.GetValue<double>();
            result["torch"] = py["torch"]!.GetValue<string>();
            result["torch_reverse_batched_rows_per_s"] = Math.Round(images / torchReverse, 2);
            result["torch_forward_s"] = Math.Round(torchForward, 2);
            result["torch_crossover_classes"] = Math.Round((tangentS - torchForward) / ((torchReverse - torchForward) / k), 1);
        }
        Console.WriteLine(JsonSerializer.Serialize(result));
        return 0;
    }

    /// <summary>PyTorch's reverse mode on the same rows (Python/time_torch_attribution.py): its JSON result.</summary>
    private static System.Text.Json.Nodes.JsonNode TorchAttribution(string[] paths, int batch, int threads, int classes, int rounds)
    {
        string list = Path.GetTempFileName();
        try
        {
            File.WriteAllLines(list, paths);
            var psi = new ProcessStartInfo("/usr/bin/python3") { RedirectStandardOutput = true, UseShellExecute = false };
            psi.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "Python", "time_torch_attribution.py"));
            foreach (var arg in new object[] { list, batch, threads, classes, rounds })
                psi.ArgumentList.Add(Convert.ToString(arg, System.Globalization.CultureInfo.InvariantCulture)!);
            using var process = Process.Start(psi)!;
            string output = process.StandardOutput.ReadToEnd();
            process.WaitForExit();
            if (process.ExitCode != 0)
                throw new InvalidOperationException($"time_torch_attribution.py failed (exit {process.ExitCode}); PyTorch (python3-torch, python3-torchvision) is needed, or pass --no-torch.");
            return System.Text.Json.Nodes.JsonNode.Parse(output.Trim().Split('\n')[^1])!;
        }
        finally
        {
            File.Delete(list);
        }
    }

    private sealed class Row
    {
        public string ImagePath { get; set; } = "";
        public string Label { get; set; } = "";
    }
}
