using Microsoft.ML.ActivationAtlas.Onnx;

namespace Microsoft.ML.ActivationAtlas.Extraction;

/// <summary>
/// One network pass over image files that keeps, for every image, one vector of each of several layers at the same
/// image location, and each layer's spatial mean: one ONNX Runtime session whose outputs are all the layers.
/// </summary>
/// <remarks>
/// The location is drawn once per image (seeded by the image's index) on the finest layer's grid, the reference, and
/// read on every layer at the cell containing the reference cell's centre (<see cref="ActivationSampler.LayerY"/>):
/// cell i of an H-row grid over an S-pixel input is centred at (i + 0.5) S / H input pixels, which for convolutions
/// padded by half their kernel is the cell's receptive-field centre to within half a stride. Locations are drawn only
/// where every layer's cell is at least the margin away from its grid's edges. A vision transformer's token layers
/// ([N, T, C] or [N, C, T], read with the token layout) are read at a patch token: the location is a patch of the
/// token grid, never the class token, and such a layer aligns only with layers of the same grid (its other token
/// layers, or its patch embedding's [N, C, G, G] output), where the location is the same cell on each.
/// </remarks>
internal sealed class AlignedExtraction : IDisposable
{
    private readonly ActivationEngine _engine;
    private readonly int _batchSize;
    private int _sessionRuns;

    public AlignedExtraction(ActivationModel model, IReadOnlyList<string> layers, int seed, int margin, int batchSize, OnnxSessionOptions session,
        TokenLayout? tokens = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(batchSize, 1);
        _engine = new ActivationEngine(model, layers, model.Preprocessing, 0, 0, ActivationSampling.RandomPosition, seed, margin, session, tokens);
        _batchSize = batchSize;
        Reference = _engine.Layers.OrderByDescending(l => (long)l.Height * l.Width).First();
        CheckTokenGrids(_engine.Layers);
        Sampler = new ActivationSampler(ActivationSampling.RandomPosition, seed, margin, Reference, 0, _engine.Layers);
    }

    /// <summary>
    /// Refuses token layers together with layers of another grid: a patch token covers one patch of the input, and a
    /// cell of a grid of other geometry covers no whole number of patches, so no cell of the one is the other's.
    /// </summary>
    private static void CheckTokenGrids(OnnxLayerInfo[] layers)
    {
        if (layers.FirstOrDefault(l => l.Tokens is not null) is not { } token)
            return;
        foreach (var l in layers)
            if (l.Height != token.Height || l.Width != token.Width)
                throw new ArgumentException($"Layers {Label(token)} and {Label(l)} cannot be aligned: the first is {Describe(token)}, the second " +
                    $"{Describe(l)}; a token layer is linked only with layers of its own patch grid (the network's other token layers, " +
                    "or its patch embedding).", "layers");
    }

    private static string Label(OnnxLayerInfo l) => l.FriendlyName is { } friendly ? $"'{l.Name}' ({friendly})" : $"'{l.Name}'";

    private static string Describe(OnnxLayerInfo l) =>
        l.Tokens is null ? $"a grid of {l.Height}x{l.Width} cells ({l.ShapeText})" : $"a token layer of {l.Height}x{l.Width} patches ({l.ShapeText})";

    /// <summary>The resolved layers, in request order.</summary>
    public OnnxLayerInfo[] Layers => _engine.Layers;

    /// <summary>The layer whose grid the positions are drawn on (the finest).</summary>
    public OnnxLayerInfo Reference { get; }

    /// <summary>Draws the positions and maps them onto each layer.</summary>
    public ActivationSampler Sampler { get; }

    /// <summary>The network's input side in pixels (height, width).</summary>
    public (int Height, int Width) InputSize => (_engine.Converter.Height, _engine.Converter.Width);

    /// <summary>ONNX Runtime calls made so far (one per batch, for all layers together).</summary>
    public int SessionRuns => _sessionRuns;

    /// <summary>
    /// Runs the network over <paramref name="paths"/>; per layer the vectors at each image's location and the spatial
    /// means (rows x channels each), and each image's reference position [y, x].
    /// </summary>
    public (float[][] Activations, float[][] Means, int[] Positions) Run(IReadOnlyList<string> paths, IProgress<double>? progress, CancellationToken ct)
    {
        int n = paths.Count, length = _engine.Converter.Length;
        var layers = _engine.Layers;
        var activations = layers.Select(l => new float[(long)n * l.Channels]).ToArray();
        var means = layers.Select(l => new float[(long)n * l.Channels]).ToArray();
        var positions = new int[2 * n];
        var batch = new float[_batchSize * length];
        var problems = new string?[_batchSize];
        for (int start = 0; start < n; start += _batchSize)
        {
            ct.ThrowIfCancellationRequested();
            int count = Math.Min(_batchSize, n - start);
            Parallel.For(0, count, s => problems[s] = ImageFileDecoder.Decode(paths[start + s], _engine.Converter, batch.AsSpan(s * length, length)));
            for (int s = 0; s < count; s++)
                if (problems[s] is { } problem)
                    throw new InvalidDataException($"Image {start + s} ('{paths[start + s]}'): {problem}.");
            for (int s = 0; s < count; s++)
                Sampler.Positions(start + s, positions.AsSpan(2 * (start + s), 1), positions.AsSpan(2 * (start + s) + 1, 1));
            using var outputs = _engine.Run(batch, count);
            Interlocked.Increment(ref _sessionRuns);
            for (int l = 0; l < layers.Length; l++)
            {
                var data = outputs[l].GetTensorDataAsSpan<float>();
                int c = layers[l].Channels;
                for (int s = 0; s < count; s++)
                {
                    long row = start + s;
                    Sampler.Gather(data, layers[l], s, positions[2 * row], positions[2 * row + 1], activations[l].AsSpan((int)(row * c), c));
                    Sampler.Gather(data, layers[l], s, -1, -1, means[l].AsSpan((int)(row * c), c));
                }
            }
            progress?.Report((double)(start + count) / n);
        }
        return (activations, means, positions);
    }

    /// <summary>
    /// The centre, in input pixels (y, x), of the cell of layer <paramref name="layer"/> that reference position
    /// (<paramref name="y"/>, <paramref name="x"/>) maps to: (cell + 0.5) x input / grid.
    /// </summary>
    public (double Y, double X) CellCentre(OnnxLayerInfo layer, int y, int x)
    {
        var (h, w) = InputSize;
        return ((Sampler.LayerY(y, layer.Height) + 0.5) * h / layer.Height, (Sampler.LayerX(x, layer.Width) + 0.5) * w / layer.Width);
    }

    public void Dispose() => _engine.Dispose();
}
