using System.Globalization;
using Microsoft.ML.ActivationAtlas.Datasets;
using Microsoft.ML.ActivationAtlas.Extraction;

namespace Microsoft.ML.ActivationAtlas.Building;

public sealed partial class AtlasBuilder
{
    /// <summary>
    /// Builds linked atlases of several layers of one network from a single network pass: every image contributes one
    /// vector per layer at the same image location, each layer is laid out and gridded as
    /// <see cref="Build(ImageFolder, LayerActivations, string, AtlasBuildOptions, IProgress{AtlasBuildProgress}?, CancellationToken)"/>
    /// does (in <c>layers/&lt;layer&gt;</c>), and <c>index.html</c> and <c>atlas.json</c> at the top link them.
    /// </summary>
    /// <remarks>
    /// The location is drawn once per image (seeded by <see cref="AtlasBuildOptions.Seed"/> and the image's index) on the
    /// grid of the finest layer and read on each layer at the cell containing that cell's centre: cell i of an H-row
    /// grid over an S-pixel input is centred at (i + 0.5) S / H input pixels, which for convolutions padded by half
    /// their kernel (ResNet, Inception) is its receptive-field centre to within half a stride, so the cells read on
    /// the layers are centred within one stride of the coarsest layer of each other. Locations are drawn only where
    /// every layer's cell is at least one cell away from its grid's edges. A vision transformer's token layers (read with
    /// <see cref="AtlasBuildOptions.Tokens"/>) are read at a patch token, the same patch on each of them and on layers of
    /// the same grid (the patch embedding's output); a token layer with a layer of another grid is refused, naming both.
    /// <see cref="AtlasBuildOptions.Layer"/> is not used; an ONNX head (<see cref="AtlasHeadKind.Model"/>) is not available.
    /// </remarks>
    /// <param name="imageFolder">The images, searched recursively (sub-folder names are the labels).</param>
    /// <param name="outputFolder">The folder to create; it must not exist.</param>
    /// <param name="layers">The layers ([N, C, H, W] or token tensors, or friendly names), at least two, in the order shown.</param>
    /// <param name="options">The settings every layer's atlas is built with.</param>
    /// <param name="progress">Receives each stage's progress (optional); a layer's stages are named <c>&lt;layer&gt;: &lt;stage&gt;</c>.</param>
    /// <param name="cancellationToken">Cancels the build; the work folder is kept for a later resume.</param>
    /// <returns>The linked atlases, as <see cref="LinkedAtlas.Open"/> reads them.</returns>
    public LinkedAtlas BuildLayers(string imageFolder, string outputFolder, IReadOnlyList<string> layers, AtlasBuildOptions options,
        IProgress<AtlasBuildProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(layers);
        ArgumentNullException.ThrowIfNull(options);
        if (layers.Count < 2)
            throw new ArgumentException($"Linked atlases need at least two layers; {layers.Count} given.", nameof(layers));
        var o = options.Clone();
        o.Layer = layers[0];
        o.Validate();
        if (o.Head == AtlasHeadKind.Model)
            throw new ArgumentException("AtlasBuildOptions.Head: linked layer atlases take None or Train (an ONNX classifier's attributions are per layer and per pass).", nameof(AtlasBuildOptions.Head));
        if (o.Sampling != ActivationSampling.RandomPosition)
            throw new ArgumentException($"AtlasBuildOptions.Sampling: linked layer atlases read every layer at one random image location per image, not {o.Sampling}.", nameof(AtlasBuildOptions.Sampling));
        AtlasFolder.EnsureFree(outputFolder);
        var report = new StageReporter(progress);
        var stage = report.Start("images");
        var images = ImageFolder.Scan(imageFolder, o.Samples, o.Seed, skipUnreadable: o.SkipUnreadableImages);
        stage.Done($"{images.Paths.Count:N0} images" + (images.Unreadable.Count > 0 ? $", {images.Unreadable.Count:N0} unreadable files skipped" : ""));
        if (images.Paths.Count < 5)
            throw new InvalidOperationException($"An atlas needs at least 5 images; '{images.Root}' has {images.Paths.Count}.");

        // Compiled before the work folder exists: a wrong layer leaves nothing behind.
        using var extraction = new AlignedExtraction(o.Model!, layers, o.Seed, margin: 1, o.BatchSize, o.Session, o.Tokens);
        string work = AtlasFolder.PrepareWork(outputFolder);
        var store = o.StageStore ?? new FileStageStore(Path.Combine(work, AtlasFolder.CacheFolder));
        var names = extraction.Layers.Select(l => l.Name).ToArray();
        string key = $"{images.Fingerprint()}|{o.Samples}|{o.Seed}|{o.Model!.Description}|aligned|{string.Join(",", names)}";

        // The network pass, once for all layers (kept in the store: a resumed build skips it).
        float[][] activations = new float[names.Length][], means = new float[names.Length][];
        int[] positions;
        int n = images.Paths.Count;
        bool stored = store.TryLoad("positions", key, out var pos, out int pn, out _) && pn == n;
        for (int l = 0; l < names.Length && stored; l++)
            stored = store.TryLoad($"layer{l}-activations", key, out activations[l], out _, out _) && store.TryLoad($"layer{l}-means", key, out means[l], out _, out _);
        if (stored)
        {
            positions = pos.Select(v => (int)v).ToArray();
            report.Reused("activations", $"{n:N0} x ({string.Join(", ", extraction.Layers.Select(l => l.Channels))})");
        }
        else
        {
            stage = report.Start("activations");
            (activations, means, positions) = extraction.Run(images.Paths, stage, cancellationToken);
            for (int l = 0; l < names.Length; l++)
            {
                store.Save($"layer{l}-activations", key, activations[l], n, extraction.Layers[l].Channels);
                store.Save($"layer{l}-means", key, means[l], n, extraction.Layers[l].Channels);
            }
            store.Save("positions", key, positions.Select(v => (float)v).ToArray(), n, 2);
            stage.Done($"{n:N0} images, {extraction.SessionRuns} network runs for {names.Length} layers");
        }

        // Each layer as a single-layer atlas of the same rows.
        var built = new BuiltAtlas[names.Length];
        for (int l = 0; l < names.Length; l++)
        {
            string sub = Path.Combine(work, LinkedAtlas.LayerFolder(names[l]));
            var lo = o.Clone();
            lo.Layer = names[l];
            lo.StageStore = null;
            // The inverted icons' time budget is the whole build's: each layer gets an equal share.
            lo.IconBudget = o.ResolvedIconBudget is { } budget ? budget / names.Length : Timeout.InfiniteTimeSpan;
            var prefixed = progress is null ? null : new SyncProgress<AtlasBuildProgress>(p => progress.Report(p with { Stage = names[l] + ": " + p.Stage }));
            built[l] = Directory.Exists(sub)
                ? Open(sub)
                : Build(images, new LayerActivations(names[l], extraction.Layers[l].Channels, activations[l], means[l]), sub, lo, prefixed, cancellationToken);
        }

        stage = report.Start("links");
        var (ih, iw) = extraction.InputSize;
        var layerPositions = extraction.Layers.Select(layer =>
        {
            var p = new int[2 * n];
            for (int r = 0; r < n; r++)
            {
                p[2 * r] = extraction.Sampler.LayerY(positions[2 * r], layer.Height);
                p[2 * r + 1] = extraction.Sampler.LayerX(positions[2 * r + 1], layer.Width);
            }
            return p;
        }).ToArray();
        LinkedAtlas.WriteLinks(work, built, extraction.Layers, layerPositions, (ih, iw), extraction.Reference.Name, o, images, cancellationToken);
        stage.Done();
        AtlasFolder.Complete(work, outputFolder);
        return LinkedAtlas.Open(_ml, outputFolder);
    }
}
