using System.Diagnostics;
using System.Numerics.Tensors;
using Microsoft.ML.ActivationAtlas.Extraction;
using Microsoft.ML.Data;
using SkiaSharp;

namespace Microsoft.ML.ActivationAtlas.Search;

/// <summary>
/// Streams images through an atlas's network with every spatial position of its layer and keeps, for each query,
/// the <c>top</c> images whose activation at some position has the largest cosine with the query's direction.
/// Memory is one batch of activations plus a heap of <c>top</c> matches per query, whatever the number of images.
/// </summary>
internal static class ConceptSearch
{
    private const string PathColumn = "ImagePath";
    private const string ActivationColumn = AtlasColumnNames.Activation;
    private const string PositionColumn = AtlasColumnNames.Position;

    public static ConceptSearchResult[] Run(MLContext ml, ActivationExtractingTransformer atlasExtraction, IReadOnlyList<ConceptQuery> queries,
        IReadOnlyList<string> imagePaths, Func<string, string>? labelOf, int top, IProgress<double>? progress, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(queries);
        ArgumentNullException.ThrowIfNull(imagePaths);
        if (queries.Count == 0 || queries.Any(q => q is null))
            throw new ArgumentException("Give at least one query, and no null ones.", nameof(queries));
        if (top < 1)
            throw new ArgumentOutOfRangeException(nameof(top), top, "The number of results must be at least 1.");
        if (imagePaths.Count == 0)
            throw new ArgumentException("There are no images to search.", nameof(imagePaths));
        cancellationToken.ThrowIfCancellationRequested();
        var clock = Stopwatch.StartNew();

        // The atlas's own extraction (model, layer, preprocessing, session), every position, unreadable images skipped.
        var options = atlasExtraction.Settings.AtEveryPosition(PathColumn, ActivationColumn, PositionColumn, BadRowHandling.Skip);
        var data = ml.Data.LoadFromEnumerable(imagePaths.Select(p => new PathRow { ImagePath = p }));
        using var extraction = ml.Transforms.ExtractActivations(options).Fit(data);
        var layer = extraction.Layers[0];
        foreach (var query in queries)
            query.CheckLength(layer.Channels, layer.Name);
        int gridH = layer.Height, gridW = layer.Width, perImage = gridH * gridW, nq = queries.Count;

        // The queries as unit rows of one matrix: a position's cosines are one matrix-vector product.
        var units = new float[nq * layer.Channels];
        for (int k = 0; k < nq; k++)
        {
            var q = queries[k].Direction.Span;
            TensorPrimitives.Divide(q, TensorPrimitives.Norm(q), units.AsSpan(k * layer.Channels, layer.Channels));
        }
        var order = Comparer<(float Score, int Order)>.Create((a, b) => a.Score != b.Score ? a.Score.CompareTo(b.Score) : b.Order.CompareTo(a.Order));
        var heaps = Enumerable.Range(0, nq).Select(_ => new PriorityQueue<Candidate, (float Score, int Order)>(top + 1, order)).ToArray();
        var bestScore = new float[nq];
        var bestY = new int[nq];
        var bestX = new int[nq];
        var view = extraction.Transform(data);
        var columns = view.Schema;
        int images = 0;
        using (var cursor = view.GetRowCursor([columns[PathColumn], columns[ActivationColumn], columns[PositionColumn]]))
        {
            var getPath = cursor.GetGetter<ReadOnlyMemory<char>>(columns[PathColumn]);
            var getActivation = cursor.GetGetter<VBuffer<float>>(columns[ActivationColumn]);
            var getPosition = cursor.GetGetter<VBuffer<int>>(columns[PositionColumn]);
            ReadOnlyMemory<char> path = default;
            VBuffer<float> activation = default;
            VBuffer<int> position = default;
            var dense = new float[layer.Channels];
            int inImage = 0;
            while (cursor.MoveNext())
            {
                if (inImage == 0)
                {
                    Array.Fill(bestScore, float.NegativeInfinity);
                    getPath(ref path);
                }
                getActivation(ref activation);
                activation.CopyTo(dense);
                float norm = TensorPrimitives.Norm(dense);
                getPosition(ref position);
                var p = position.GetValues();
                for (int k = 0; k < nq; k++)
                {
                    float score = norm > 0 ? TensorPrimitives.Dot(dense, units.AsSpan(k * layer.Channels, layer.Channels)) / norm : 0f;
                    if (score > bestScore[k])
                    {
                        bestScore[k] = score;
                        bestY[k] = p[0];
                        bestX[k] = p[1];
                    }
                }
                if (++inImage < perImage)
                    continue;
                // Every position of one image seen (unreadable images give no rows): offer its best to each heap.
                string file = path.ToString();
                for (int k = 0; k < nq; k++)
                {
                    var heap = heaps[k];
                    if (heap.Count < top)
                        heap.Enqueue(new Candidate(file, bestScore[k], bestY[k], bestX[k]), (bestScore[k], images));
                    else if (bestScore[k] > heap.Peek().Score)
                        heap.EnqueueDequeue(new Candidate(file, bestScore[k], bestY[k], bestX[k]), (bestScore[k], images));
                }
                images++;
                inImage = 0;
                cancellationToken.ThrowIfCancellationRequested();
                if (images % 16 == 0)
                    progress?.Report((double)images / imagePaths.Count);
            }
        }
        cancellationToken.ThrowIfCancellationRequested();
        var skipped = extraction.SkippedRows.Select(s => $"{s.ImagePath}: {s.Reason}").ToArray();
        if (images == 0)
            throw new InvalidDataException($"None of the {imagePaths.Count} images could be read" +
                (skipped.Length > 0 ? $": {string.Join("; ", skipped.Take(3))}{(skipped.Length > 3 ? "; ..." : "")}" : "."));
        var size = (extraction.Engine.Converter.Width, extraction.Engine.Converter.Height);
        double seconds = clock.Elapsed.TotalSeconds;
        progress?.Report(1);
        return heaps.Select((heap, k) =>
        {
            var ordered = new List<Candidate>(heap.Count);
            while (heap.Count > 0)
                ordered.Add(heap.Dequeue());
            ordered.Reverse();
            var matches = ordered.Select((c, i) => new ConceptMatch(i + 1, c.Score, c.Path, labelOf?.Invoke(c.Path) ?? "", c.Y, c.X,
                RegionOf(c.Path, size, gridH, gridW, c.Y, c.X))).ToArray();
            return new ConceptSearchResult(queries[k], layer.Name, gridH, gridW, matches, images, skipped, seconds);
        }).ToArray();
    }

    /// <summary>
    /// The part of an image file that position (y, x) of a <paramref name="gridH"/> x <paramref name="gridW"/> layer
    /// stands for: its equal share of the network input, mapped back through the decoder's center crop and scaling.
    /// </summary>
    internal static ImageRegion RegionOf(string path, (int Width, int Height) input, int gridH, int gridW, int y, int x)
    {
        using var codec = SKCodec.Create(path);
        int fileW = codec?.Info.Width ?? input.Width, fileH = codec?.Info.Height ?? input.Height;
        var (left, topEdge, cropW, cropH) = ImageFileDecoder.CenterCrop(fileW, fileH, input.Width, input.Height);
        double x0 = left + (double)cropW * x / gridW, x1 = left + (double)cropW * (x + 1) / gridW;
        double y0 = topEdge + (double)cropH * y / gridH, y1 = topEdge + (double)cropH * (y + 1) / gridH;
        int rx = (int)Math.Floor(x0), ry = (int)Math.Floor(y0);
        return new ImageRegion(rx, ry, Math.Max(1, (int)Math.Ceiling(x1) - rx), Math.Max(1, (int)Math.Ceiling(y1) - ry));
    }

    private readonly record struct Candidate(string Path, float Score, int Y, int X);

    private sealed class PathRow
    {
        public string ImagePath { get; set; } = "";
    }
}
