using System.Diagnostics;
using System.Globalization;
using Microsoft.ML.ActivationAtlas.Extraction;
using Microsoft.ML.ActivationAtlas.Onnx;
using Microsoft.ML.Data;
using Microsoft.ML.OnnxRuntime;
using SkiaSharp;

namespace Microsoft.ML.ActivationAtlas.Benchmarks;

/// <summary>
/// Activation extraction throughput: ResNet18 up to <c>ReLU393_Output_0</c> on CIFAR-10 images resized to 224,
/// three ways in one process: ML.NET's stock pipeline (ExtractPixels + two ApplyOnnxModel, final output), our
/// estimator (batched), and a bare ONNX Runtime loop (SkiaSharp decode/resize of each batch in parallel, as ours
/// decodes, same cut graph, same batch size); the bare loop's decode and network times are reported separately.
/// </summary>
internal sealed class ExtractionBenchmark : IBenchmark
{
    private const string Layer = "ReLU393_Output_0";

    public string Name => "extraction";

    public string Description => "ResNet18 to ReLU393 on CIFAR-10 at 224: stock ML.NET vs ours vs bare ORT (--images 2000 --chunk 160 --batch 32 --threads 0 --cuda --device 0 --skip-stock --mlimage)";

    public int Run(string[] args)
    {
        var a = new BenchmarkArgs(args);
        int count = a.Get("images", 2000), batch = a.Get("batch", 32), threads = a.Get("threads", 0), device = a.Get("device", 0);
        bool cuda = a.Has("cuda"), skipStock = a.Has("skip-stock"), viaMlImage = a.Has("mlimage");
        var session = new OnnxSessionOptions { IntraOpThreads = threads, UseCuda = cuda, GpuDeviceId = device };
        var images = Images(count);
        Console.WriteLine($"extraction: {images.Count} CIFAR-10 images, batch {batch}, threads {(threads == 0 ? "default" : threads)}, {Environment.ProcessorCount} cores{(cuda ? $", CUDA device {device}" : "")}");

        // The machine's load drifts, so the three ways take turns on chunks of images (rotating who goes first)
        // and each way's time is summed over all chunks.
        int chunk = Math.Max(batch, a.Get("chunk", 5 * batch));
        var runners = new List<(string Name, Func<IReadOnlyList<string>, double> Seconds)>
        {
            ("ours", Ours(images, batch, session, viaMlImage)),
            ("bare", Bare(images, batch, session)),
        };
        if (!skipStock)
            runners.Add(("stock", Stock(images, cuda, device)));
        var total = runners.ToDictionary(r => r.Name, _ => 0.0);
        for (int start = 0, round = 0; start < images.Count; start += chunk, round++)
        {
            var part = images.GetRange(start, Math.Min(chunk, images.Count - start));
            for (int k = 0; k < runners.Count; k++)
            {
                var (name, run) = runners[(k + round) % runners.Count];
                total[name] += run(part);
            }
            Console.WriteLine($"  {start + part.Count,5}/{images.Count}: " + string.Join(", ", total.Select(kv => $"{kv.Key} {(start + part.Count) / kv.Value:F1}/s")));
        }
        double ours = images.Count / total["ours"], bare = images.Count / total["bare"];
        double stock = skipStock ? double.NaN : images.Count / total["stock"];
        Console.WriteLine($"  ours     {ours,8:F1} images/s ({s_provider}, input {(viaMlImage ? "LoadImages+ResizeImages MLImage column" : "image path column")})");
        Console.WriteLine($"  bare ORT {bare,8:F1} images/s (decode + resize {s_bareDecodeSeconds:F1} s in parallel, network {s_bareNetworkSeconds:F1} s)");
        Console.WriteLine($"  stock    {stock,8:F1} images/s");
        Console.WriteLine($"  ours/bare {ours / bare:F3}, ours/stock {ours / stock:F3}");
        string F(double v) => double.IsNaN(v) ? "null" : v.ToString("F2", CultureInfo.InvariantCulture);
        Console.WriteLine($"{{\"benchmark\":\"extraction\",\"provider\":\"{s_provider}\",\"batch\":{batch},\"images\":{images.Count},\"ours_images_per_s\":{F(ours)},\"stock_images_per_s\":{F(stock)},\"bare_ort_images_per_s\":{F(bare)},\"bare_decode_s\":{F(s_bareDecodeSeconds)},\"bare_network_s\":{F(s_bareNetworkSeconds)},\"bare_network_images_per_s\":{F(images.Count / s_bareNetworkSeconds)}}}");
        return 0;
    }

    /// <summary>CIFAR-10 test images, classes interleaved, from image <paramref name="firstPerClass"/> of each class on.</summary>
    internal static List<string> Images(int count, int firstPerClass = 0)
    {
        var dirs = Directory.GetDirectories(SharedData.Cifar10Test).OrderBy(d => d, StringComparer.Ordinal).ToArray();
        var perClass = dirs.Select(d => Directory.GetFiles(d, "*.jpg").OrderBy(f => f, StringComparer.Ordinal).ToArray()).ToArray();
        var list = new List<string>(count);
        for (int i = firstPerClass; list.Count < count && i < 1000; i++)
            foreach (var files in perClass)
                if (list.Count < count)
                    list.Add(files[i]);
        return list;
    }

    private sealed class Row
    {
        public string ImagePath { get; set; } = "";
    }

    private static IDataView Loaded(MLContext ml, IEnumerable<string> paths)
    {
        var data = ml.Data.LoadFromEnumerable(paths.Select(p => new Row { ImagePath = p }));
        return ml.Transforms.LoadImages("Image", null, "ImagePath").Append(ml.Transforms.ResizeImages("Image", 224, 224, "Image")).Fit(data).Transform(data);
    }

    private static string s_provider = "";

    private static Func<IReadOnlyList<string>, double> Ours(List<string> images, int batch, OnnxSessionOptions session, bool viaMlImage)
    {
        var ml = new MLContext(seed: 1);
        IDataView Input(IEnumerable<string> paths) => viaMlImage
            ? Loaded(ml, paths)
            : ml.Data.LoadFromEnumerable(paths.Select(p => new Row { ImagePath = p }).ToList());
        var warm = Input(images.Take(batch));
        var t = ml.Transforms.ExtractActivations(new ActivationExtractingEstimator.Options
        {
            Model = PretrainedModels.ResNet18,
            Layers = [Layer],
            InputColumnName = viaMlImage ? "Image" : "ImagePath",
            BatchSize = batch,
            Session = session,
        }).Fit(warm);
        s_provider = t.ExecutionProvider;
        Consume(t.Transform(warm), AtlasColumnNames.Activation);
        return paths =>
        {
            var view = Input(paths);
            var sw = Stopwatch.StartNew();
            long rows = Consume(t.Transform(view), AtlasColumnNames.Activation);
            double seconds = sw.Elapsed.TotalSeconds;
            if (rows != paths.Count)
                throw new InvalidOperationException($"ours produced {rows} rows for {paths.Count} images");
            return seconds;
        };
    }

    private static Func<IReadOnlyList<string>, double> Stock(List<string> images, bool cuda, int device)
    {
        var ml = new MLContext(seed: 1);
        var net = PretrainedModels.ResNet18;
        var pipeline = ml.Transforms.ExtractPixels("OriginalInput", "Image")
            .Append(ml.Transforms.ApplyOnnxModel(["PreprocessedInput"], ["OriginalInput"], net.PreprocessingModelPath!, cuda ? device : null, cuda))
            .Append(ml.Transforms.CopyColumns("Input247", "PreprocessedInput"))
            .Append(ml.Transforms.ApplyOnnxModel(["Pooling395_Output_0"], ["Input247"], net.NetworkPath!, cuda ? device : null, cuda));
        var warm = Loaded(ml, images.Take(8));
        var model = pipeline.Fit(warm);
        Consume(model.Transform(warm), "Pooling395_Output_0");
        return paths =>
        {
            var view = Loaded(ml, paths);
            var sw = Stopwatch.StartNew();
            Consume(model.Transform(view), "Pooling395_Output_0");
            return sw.Elapsed.TotalSeconds;
        };
    }

    private static Func<IReadOnlyList<string>, double> Bare(List<string> images, int batch, OnnxSessionOptions options)
    {
        // The same graph our estimator runs: preprocessing chained before ResNet18 cut at the layer, batch symbolic.
        var resnet = PretrainedModels.ResNet18;
        var layer = OnnxLayers.Resolve(OnnxLayers.Probe(resnet.Network), Layer);
        var cut = OnnxGraphSurgery.Extract(OnnxGraphSurgery.MakeBatchDynamic(resnet.Network), ["Input247"], [Layer],
            new Dictionary<string, long[]> { [Layer] = layer.Shape });
        var model = OnnxGraphSurgery.Chain(OnnxGraphSurgery.MakeBatchDynamic(resnet.PreprocessingModel!), cut, "Input247");
        var session = OnnxSessionFactory.Create(OnnxModelIO.ToBytes(model), options, out _);
        const int hw = 224 * 224;
        var input = new float[batch * 3 * hw];
        var sink = new float[512];

        void RunAll(IReadOnlyList<string> paths)
        {
            for (int start = 0; start < paths.Count; start += batch)
            {
                int n = Math.Min(batch, paths.Count - start);
                // Decode and resize the batch's files in parallel, as our estimator does.
                var sw = Stopwatch.StartNew();
                Parallel.For(0, n, i =>
                {
                    using var decoded = SKBitmap.Decode(paths[start + i]);
                    using var resized = decoded.Resize(new SKImageInfo(224, 224, SKColorType.Bgra8888, SKAlphaType.Premul), new SKSamplingOptions(SKFilterMode.Linear, SKMipmapMode.Linear));
                    var px = resized.GetPixelSpan();
                    var slot = input.AsSpan(i * 3 * hw, 3 * hw);
                    for (int p = 0; p < hw; p++)
                    {
                        slot[p] = px[4 * p + 2];
                        slot[hw + p] = px[4 * p + 1];
                        slot[2 * hw + p] = px[4 * p];
                    }
                });
                s_bareDecodeSeconds += sw.Elapsed.TotalSeconds;
                sw.Restart();
                using var runOptions = new RunOptions();
                using var value = OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, new Memory<float>(input, 0, n * 3 * hw), [n, 3, 224, 224]);
                using var outputs = session.Run(runOptions, ["OriginalInput"], [value], [Layer]);
                var data = outputs[0].GetTensorDataAsSpan<float>();
                for (int i = 0; i < n; i++)
                    for (int c = 0; c < 512; c++)
                        sink[c] = data[(i * 512 + c) * 49 + 24]; // one position per image, as ours reads
                s_bareNetworkSeconds += sw.Elapsed.TotalSeconds;
            }
        }

        RunAll(images.Take(batch).ToList());
        s_bareDecodeSeconds = s_bareNetworkSeconds = 0;
        return paths =>
        {
            var sw = Stopwatch.StartNew();
            RunAll(paths);
            return sw.Elapsed.TotalSeconds;
        };
    }

    /// <summary>The bare loop's time in decoding and resizing, and in the network, summed over the timed chunks.</summary>
    private static double s_bareDecodeSeconds, s_bareNetworkSeconds;

    internal static long Consume(IDataView view, string column)
    {
        long rows = 0;
        using var cursor = view.GetRowCursor([view.Schema[column]]);
        var getter = cursor.GetGetter<VBuffer<float>>(view.Schema[column]);
        VBuffer<float> value = default;
        while (cursor.MoveNext())
        {
            getter(ref value);
            rows++;
        }
        return rows;
    }
}
