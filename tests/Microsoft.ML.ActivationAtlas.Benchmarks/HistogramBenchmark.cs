using System.Diagnostics;
using System.Globalization;
using Microsoft.ML.ActivationAtlas.Building;
using Microsoft.ML.ActivationAtlas.Datasets;
using Microsoft.ML.ActivationAtlas.Extraction;

namespace Microsoft.ML.ActivationAtlas.Benchmarks;

/// <summary>
/// Concept histograms at extraction speed: <c>atlas histogram</c>'s library path (<see cref="BuiltAtlas.ConceptHistogram(IReadOnlyCollection{string}, long, long, CancellationToken)"/>:
/// new images through the atlas's network, its fitted UMAP layout and its grid, counted per cell) against the plain
/// extraction of the same images by the atlas's own extraction transformer (same network, layer, batch and sessions),
/// in one process, the two taking turns on chunks of images.
/// </summary>
internal sealed class HistogramBenchmark : IBenchmark
{
    public string Name => "histogram";

    public string Description => "atlas histogram's library path vs plain extraction of the same CIFAR-10 images (--images 2000 --chunk 200 --atlas DIR | --atlas-images 1000)";

    public int Run(string[] args)
    {
        var a = new BenchmarkArgs(args);
        int count = a.Get("images", 2000), chunk = a.Get("chunk", 200), atlasImages = a.Get("atlas-images", 1000);
        string? atlasDir = a.Has("atlas") ? a.Get("atlas", "") : null;
        var ml = new MLContext(seed: 1);
        string? scratch = null;
        BuiltAtlas atlas;
        if (atlasDir is null)
        {
            // The first images of each class make the atlas; the timed images come from the second half of each class.
            int perLabel = Math.Max(1, atlasImages / 10);
            if (perLabel > 500)
                throw new ArgumentException($"--atlas-images {atlasImages}: at most 5,000 (the timed images start at image 500 of each class).");
            scratch = Path.Combine(Path.GetTempPath(), "histogram-benchmark-" + Guid.NewGuid().ToString("N"));
            Console.Error.WriteLine($"histogram: building an atlas of {perLabel * 10} CIFAR-10 images (example icons) in {scratch} (not timed)");
            atlas = ml.Atlas().Build(ImageFolder.Scan(SharedData.Cifar10Test, perLabel: perLabel), Path.Combine(scratch, "atlas"), new AtlasBuildOptions
            {
                Model = PretrainedModels.ResNet18,
                Layer = "ReLU393_Output_0",
                Icons = AtlasIconKind.Examples,
            });
        }
        else
        {
            atlas = ml.Atlas().Open(atlasDir);
        }
        try
        {
            return Compare(atlas, ExtractionBenchmark.Images(count, firstPerClass: atlasDir is null ? 500 : 0), Math.Max(1, chunk));
        }
        finally
        {
            if (scratch is not null)
                Directory.Delete(scratch, true);
        }
    }

    private static int Compare(BuiltAtlas atlas, List<string> images, int chunk)
    {
        var extraction = atlas.Extraction;
        int batch = extraction.Settings.BatchSize;
        Console.WriteLine($"histogram: {images.Count} CIFAR-10 images on the atlas of {atlas.ModelName} {atlas.LayerName} ({atlas.RowCount:N0} rows, grids {string.Join(",", atlas.GridSizes)}), " +
            $"batch {batch}, chunks of {chunk}, {Environment.ProcessorCount} cores, {extraction.ExecutionProvider}");

        // Warm-up of both paths (sessions, layout, JIT) on the first batch, not timed.
        var warm = images.Take(Math.Min(batch, images.Count)).ToList();
        atlas.ConceptHistogram(warm);
        ExtractionBenchmark.Consume(extraction.Transform(Paths(warm)), AtlasColumnNames.Activation);

        var seconds = new Dictionary<string, double> { ["histogram"] = 0, ["extraction"] = 0 };
        var allocated = new Dictionary<string, long> { ["histogram"] = 0, ["extraction"] = 0 };
        var parts = new List<Histogram.ConceptHistogram>();
        for (int start = 0, round = 0; start < images.Count; start += chunk, round++)
        {
            var part = images.GetRange(start, Math.Min(chunk, images.Count - start));
            for (int k = 0; k < 2; k++)
            {
                bool histogramTurn = (k + round) % 2 == 0;
                string name = histogramTurn ? "histogram" : "extraction";
                long before = GC.GetTotalAllocatedBytes(precise: true);
                var sw = Stopwatch.StartNew();
                if (histogramTurn)
                {
                    // The images are rows start.. of the whole list, as one pass over the list would place them.
                    parts.Add(atlas.ConceptHistogram(part, start, images.Count));
                }
                else
                {
                    long rows = ExtractionBenchmark.Consume(extraction.Transform(Paths(part)), AtlasColumnNames.Activation);
                    if (rows != part.Count)
                        throw new InvalidOperationException($"extraction produced {rows} rows for {part.Count} images");
                }
                seconds[name] += sw.Elapsed.TotalSeconds;
                allocated[name] += GC.GetTotalAllocatedBytes(precise: true) - before;
            }
            int done = start + part.Count;
            Console.Error.WriteLine($"  {done,5}/{images.Count}: histogram {done / seconds["histogram"]:F1}/s, extraction {done / seconds["extraction"]:F1}/s");
        }
        var merged = Histogram.ConceptHistogram.Merge(parts);
        if (merged.Total != images.Count)
            throw new InvalidOperationException($"the histogram counts {merged.Total} images of {images.Count}");

        double histogram = images.Count / seconds["histogram"], plain = images.Count / seconds["extraction"];
        double histogramKb = allocated["histogram"] / 1024.0 / images.Count, extractionKb = allocated["extraction"] / 1024.0 / images.Count;
        double peakMb = Process.GetCurrentProcess().PeakWorkingSet64 / 1048576.0;
        Console.WriteLine($"  histogram  {histogram,8:F1} images/s ({histogramKb:F0} KB allocated per image)");
        Console.WriteLine($"  extraction {plain,8:F1} images/s ({extractionKb:F0} KB allocated per image)");
        Console.WriteLine($"  histogram/extraction {histogram / plain:F3}; peak working set {peakMb:F0} MB (both paths, one process)");
        string F(double v) => v.ToString("F2", CultureInfo.InvariantCulture);
        Console.WriteLine($"{{\"benchmark\":\"histogram\",\"provider\":\"{extraction.ExecutionProvider}\",\"images\":{images.Count},\"chunk\":{chunk},\"batch\":{batch}," +
            $"\"atlas_rows\":{atlas.RowCount},\"histogram_images_per_s\":{F(histogram)},\"extraction_images_per_s\":{F(plain)},\"ratio_histogram_over_extraction\":{F(histogram / plain)}," +
            $"\"histogram_kb_allocated_per_image\":{F(histogramKb)},\"extraction_kb_allocated_per_image\":{F(extractionKb)},\"peak_working_set_mb\":{F(peakMb)}}}");
        return 0;
    }

    private static IDataView Paths(IEnumerable<string> paths) =>
        new MLContext(seed: 1).Data.LoadFromEnumerable(paths.Select(p => new ImagePathRow { ImagePath = p }).ToList());
}
