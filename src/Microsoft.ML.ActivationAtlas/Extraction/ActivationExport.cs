using Microsoft.ML.ActivationAtlas.Building;
using Microsoft.ML.ActivationAtlas.Cluster;
using Microsoft.ML.ActivationAtlas.Datasets;
using Microsoft.ML.Data;

namespace Microsoft.ML.ActivationAtlas.Extraction;

/// <summary>What <see cref="ActivationExport.Write"/> wrote.</summary>
/// <param name="Files">The files: the activation arrays, then <c>&lt;stem&gt;.rows.csv</c> and <c>&lt;stem&gt;.json</c>.</param>
/// <param name="Rows">Rows written.</param>
/// <param name="Images">Images in the list.</param>
/// <param name="SkippedImages">Images left out as unreadable (with <see cref="BadRowHandling.Skip"/>).</param>
/// <param name="Layers">The resolved layers, in file order.</param>
/// <param name="ExecutionProvider">The ONNX Runtime execution provider that ran the network.</param>
public sealed record ActivationExportResult(IReadOnlyList<string> Files, long Rows, int Images, long SkippedImages,
    IReadOnlyList<Onnx.OnnxLayerInfo> Layers, string ExecutionProvider);

/// <summary>
/// The activations of a folder of images written as numpy-readable files, as <c>atlas extract</c> writes them (see
/// <see cref="ActivationFileWriter"/> for the format): one pass of the network in the folder's order.
/// </summary>
public static class ActivationExport
{
    private const string PathColumn = "ImagePath";
    private const string LabelColumn = "Label";
    private const string PositionColumn = "Position";

    /// <summary>
    /// Runs <paramref name="images"/> through the network of <paramref name="options"/> and writes
    /// <paramref name="outputPath"/> (<c>.npy</c>, one per layer when there are several) with its <c>.rows.csv</c> and
    /// <c>.json</c> sidecars, each under a temporary name renamed when complete.
    /// </summary>
    /// <param name="mlContext">The ML.NET context.</param>
    /// <param name="images">The images and their labels.</param>
    /// <param name="options">The extraction (model, layers, sampling, seed, margin, batch size, bad rows, session); its
    /// column names are set here.</param>
    /// <param name="outputPath">The <c>.npy</c> path (its stem names the sidecars).</param>
    /// <param name="progress">Receives the <c>extract</c> stage's progress (optional).</param>
    /// <param name="cancellationToken">Cancels the work; nothing is written then.</param>
    public static ActivationExportResult Write(MLContext mlContext, ImageFolder images, ActivationExtractingEstimator.Options options, string outputPath,
        IProgress<AtlasBuildProgress>? progress = null, CancellationToken cancellationToken = default) =>
        WriteRows(mlContext, images, options, Shard.Whole, outputPath, progress, cancellationToken).Result;

    /// <summary>Writes the rows of one shard of <paramref name="images"/>; skipped rows are numbered in the whole list.</summary>
    internal static (ActivationExportResult Result, SkippedRow[] Skipped) WriteRows(MLContext mlContext, ImageFolder images, ActivationExtractingEstimator.Options options,
        Shard shard, string outputPath, IProgress<AtlasBuildProgress>? progress, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(mlContext);
        ArgumentNullException.ThrowIfNull(images);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentException.ThrowIfNullOrEmpty(outputPath);
        var o = options.Clone();
        long first = shard.Start(images.Paths.Count);
        o.OutputColumnNames = o.Layers.Select((_, i) => "A" + i).ToArray();
        o.InputColumnName = PathColumn; // decoded and resized by the stage, in parallel per batch
        o.PositionColumnName = PositionColumn;
        o.SpatialMeanColumnName = null;
        o.FirstRowIndex = first;
        var part = shard.Take(images.Paths);
        var labels = shard.Take(images.Labels);
        var data = mlContext.Data.LoadFromEnumerable(part.Select((p, i) => new ImageRow { ImagePath = p, Label = labels[i] }));
        using var transformer = mlContext.Transforms.ExtractActivations(o).Fit(data);
        var view = transformer.Transform(data);
        var columns = transformer.OutputColumnNames.Select(n => view.Schema[n]).ToList();
        var stage = new StageReporter(progress).Start("extract");
        using var writer = new ActivationFileWriter(outputPath, transformer.Layers.Select(l => l.FriendlyName ?? l.Name).ToList(),
            transformer.Layers.Select(l => l.Channels).ToList());
        long perImage = o.Sampling == ActivationSampling.AllPositions ? transformer.Layers[0].Height * transformer.Layers[0].Width : 1;
        double expected = Math.Max(1, part.Count * (double)perImage);
        using (var cursor = view.GetRowCursor([.. columns, view.Schema[PathColumn], view.Schema[LabelColumn], view.Schema[PositionColumn]]))
        {
            var getters = columns.Select(c => cursor.GetGetter<VBuffer<float>>(c)).ToArray();
            var path = cursor.GetGetter<ReadOnlyMemory<char>>(view.Schema[PathColumn]);
            var label = cursor.GetGetter<ReadOnlyMemory<char>>(view.Schema[LabelColumn]);
            var position = cursor.GetGetter<VBuffer<int>>(view.Schema[PositionColumn]);
            var buffers = new VBuffer<float>[getters.Length];
            var vectors = new ReadOnlyMemory<float>[getters.Length];
            var dense = transformer.Layers.Select(l => new float[l.Channels]).ToArray();
            ReadOnlyMemory<char> p = default, l = default;
            VBuffer<int> pos = default;
            while (cursor.MoveNext())
            {
                cancellationToken.ThrowIfCancellationRequested();
                for (int i = 0; i < getters.Length; i++)
                {
                    getters[i](ref buffers[i]);
                    buffers[i].CopyTo(dense[i]);
                    vectors[i] = dense[i];
                }
                path(ref p);
                label(ref l);
                position(ref pos);
                var yx = pos.GetValues();
                writer.Append(p.ToString(), l.ToString(), yx[0], yx[1], vectors);
                if ((writer.Rows & 63) == 0)
                    stage.Report(writer.Rows / expected);
            }
        }
        var skipped = transformer.SkippedRows.Select(s => s with { Row = s.Row + first }).ToArray();
        var (width, height) = (transformer.Engine.Converter.Width, transformer.Engine.Converter.Height);
        writer.Complete(new Dictionary<string, object?>
        {
            ["model"] = o.Model!.Description,
            ["layers"] = transformer.Layers.Select(x => new { name = x.Name, friendly = x.FriendlyName, op = x.OpType, shape = x.Shape.Skip(1).ToArray() }).ToArray(),
            ["sampling"] = o.Sampling.ToString(),
            ["seed"] = o.Seed,
            ["margin"] = o.Margin,
            ["images"] = images.Paths.Count,
            ["skipped_images"] = transformer.SkippedRowCount,
            ["skipped"] = SkippedJson(skipped),
            ["image_size"] = new[] { height, width },
            ["execution_provider"] = transformer.ExecutionProvider,
        });
        stage.Done($"{writer.Rows:N0} rows" + (transformer.SkippedRowCount > 0 ? $", {transformer.SkippedRowCount} unreadable images skipped" : ""));
        return (new ActivationExportResult(writer.Files, writer.Rows, images.Paths.Count, transformer.SkippedRowCount, transformer.Layers,
            transformer.ExecutionProvider), skipped);
    }

    /// <summary>The skipped rows as the JSON sidecar lists them.</summary>
    internal static object[] SkippedJson(IEnumerable<SkippedRow> skipped) =>
        skipped.Select(s => (object)new { row = s.Row, image = s.ImagePath, reason = s.Reason }).ToArray();

    private sealed class ImageRow
    {
        public string ImagePath { get; set; } = "";
        public string Label { get; set; } = "";
    }
}
