using Microsoft.ML.ActivationAtlas.Numerics;
using Microsoft.ML.ActivationAtlas.Building;
using Microsoft.ML.ActivationAtlas.Datasets;
using Microsoft.ML.ActivationAtlas.Extraction;
using Microsoft.ML.ActivationAtlas.Rendering;
using SkiaSharp;

namespace Microsoft.ML.ActivationAtlas.Attacks;

/// <summary>
/// Pastes atlas icons (and noise of the same sizes) into the corners of a class's images, as the network sees them
/// (center-cropped and resized to its input), and classifies every result with the atlas's trained head on the
/// layer's spatial mean.
/// </summary>
internal static class PatchAttacker
{
    public static PatchAttackResult Run(BuiltAtlas atlas, string sourceClass, string targetClass, ImageFolder images, PatchAttackOptions o,
        StageReporter report, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(images);
        int source = atlas.ClassIndex(sourceClass), target = atlas.ClassIndex(targetClass);
        if (source == target)
            throw new ArgumentException($"'{sourceClass}' and '{targetClass}' are the same class; attack one class towards another.");
        string sourceName = atlas.ClassNames[source], targetName = atlas.ClassNames[target];
        var head = atlas.TrainedHead();
        var paths = images.Paths.Where((p, i) => string.Equals(images.Labels[i], sourceName, StringComparison.OrdinalIgnoreCase)).ToList();
        if (paths.Count == 0)
        {
            var labels = images.Labels.Where(l => l.Length > 0).Distinct().Order(StringComparer.Ordinal).ToArray();
            throw new InvalidDataException($"The image folder '{images.Root}' has no images of '{sourceName}' (a first-level sub-folder named '{sourceName}'); " +
                (labels.Length == 0 ? "it has no class sub-folders." : $"its sub-folders are: {string.Join(", ", labels)}."));
        }
        if (o.MaximumImages > 0 && paths.Count > o.MaximumImages)
            paths = paths.Take(o.MaximumImages).ToList();

        var (cells, grid) = SelectCells(atlas, source, target, o);
        var icons = o.Icons == AtlasIconKind.Inversion
            ? atlas.InvertedCellIcons(cells.Select(c => c.Source).ToArray(), o.IconSteps, report, ct)
            : cells.Select(c => (o.Icons != AtlasIconKind.Examples ? atlas.CellIcon(c.Source)
                : c.Source.ExampleRows.Count > 0 ? AtlasIcons.Thumbnail(atlas.ImagePaths[c.Source.ExampleRows[0]], atlas.IconSize) : null)
                ?? throw new InvalidDataException($"The atlas has no icon for cell {c.Id}.")).ToArray();
        var extraction = ((IEnumerable<ITransformer>)atlas.Pipeline).OfType<ActivationExtractingTransformer>().First();
        var engine = extraction.Engine;
        var layer = engine.Layers[0];
        if (layer.Channels != head.Dim)
            throw new InvalidDataException($"The atlas's head takes {head.Dim} values but layer {layer.Name} has {layer.Channels} channels.");
        int w = engine.Converter.Width, h = engine.Converter.Height, side = Math.Min(w, h);
        var sizes = o.Sizes.Distinct().ToArray();
        var placements = sizes.SelectMany(s => o.Corners.Distinct().Select(c => new PatchPlacement(s, c))).ToArray();
        int fixedIndex = Array.IndexOf(placements, new PatchPlacement(o.FixedSize, o.FixedCorner));
        var sides = sizes.Select(s => Math.Max(1, (int)Math.Round(s * side))).ToArray();
        // Each icon resized once per size, as BGRA bytes.
        var patchPixels = cells.Select((c, p) => sides.Select(s => IconPixels(icons[p], c.Id, s)).ToArray()).ToArray();

        int np = placements.Length, runs = 1 + (cells.Length + 1) * np, n = paths.Count;
        var predictions = new int[n * runs];
        var readable = new bool[n];
        var skipped = new List<string>();
        int batch = o.BatchSize, length = engine.Converter.Length;
        var inputs = new float[batch * length];
        var owners = new int[batch];
        var mean = new float[layer.Channels];
        int filled = 0, readableCount = 0;
        var pixels = new byte[w * h * 4];
        var noise = new byte[sides.Max() * sides.Max() * 4];

        void Flush()
        {
            if (filled == 0)
                return;
            using var outputs = engine.Run(inputs, filled);
            var data = outputs[0].GetTensorDataAsSpan<float>();
            for (int i = 0; i < filled; i++)
            {
                engine.Sampler.Gather(data, layer, i, -1, -1, mean);
                predictions[owners[i]] = head.Predict(mean);
            }
            filled = 0;
        }

        void Add(ReadOnlySpan<byte> bgra, int slot)
        {
            string? error = engine.Converter.FromBgra(bgra, inputs.AsSpan(filled * length, length));
            if (error is not null)
                throw new InvalidDataException(error);
            owners[filled++] = slot;
            if (filled == batch)
                Flush();
        }

        var stage = report.Start("attack");
        for (int img = 0; img < n; img++)
        {
            ct.ThrowIfCancellationRequested();
            string? error = ImageFileDecoder.DecodeToSize(paths[img], w, h, out var bitmap);
            if (error is not null)
            {
                skipped.Add($"{paths[img]}: {error}");
                continue;
            }
            readable[img] = true;
            int sequence = readableCount++;
            byte[] clean;
            using (bitmap)
                clean = Compact(bitmap!);
            Add(clean, img * runs);
            for (int p = 0; p <= cells.Length; p++)
                for (int j = 0; j < np; j++)
                {
                    int s = Array.IndexOf(sizes, placements[j].Size), edge = sides[s];
                    clean.CopyTo(pixels, 0);
                    byte[] patch = p < cells.Length ? patchPixels[p][s] : Noise(noise, edge, o.Seed, sequence, j);
                    Paste(pixels, w, h, patch, edge, placements[j].Corner);
                    Add(pixels, img * runs + 1 + p * np + j);
                }
            stage.Report((img + 1.0) / n);
        }
        Flush();
        ct.ThrowIfCancellationRequested();

        var kept = Enumerable.Range(0, n).Where(i => readable[i]).ToArray();
        if (kept.Length == 0)
            throw new InvalidDataException($"None of the {n} images of '{sourceName}' in '{images.Root}' could be read: {string.Join("; ", skipped.Take(3))}.");
        var compact = new int[kept.Length * runs];
        for (int i = 0; i < kept.Length; i++)
            Array.Copy(predictions, kept[i] * runs, compact, i * runs, runs);
        int m = kept.Length;
        Proportion Count(Func<int, bool> hit, int run) => new(Enumerable.Range(0, m).Count(i => hit(compact[i * runs + run])), m);
        PatchAttackPatch Patch(int p, Cell? cell) => new(cell?.Id, cell?.Push ?? 0, cell?.Count ?? 0, cell is null ? null : icons[p],
            Enumerable.Range(0, np).Select(j => new PatchPlacementResult(placements[j],
                Count(k => k == target, 1 + p * np + j), Count(k => k != source, 1 + p * np + j))).ToArray(), fixedIndex);
        var patches = cells.Select((c, p) => Patch(p, c)).ToArray();
        stage.Done($"{m:N0} images x {runs} runs");
        return new PatchAttackResult(sourceName, targetName, kept.Select(i => paths[i]).ToArray(), skipped, Count(k => k == target, 0),
            Count(k => k == source, 0), patches, Patch(cells.Length, null), placements, placements[fixedIndex], grid, compact, atlas.ClassNames,
            o.Icons ?? atlas.IconKind);
    }

    /// <summary>A cell taken as a patch: its id, push towards the target, image count and icon.</summary>
    internal sealed record Cell(AtlasCellId Id, float Push, int Count, Binning.AtlasCell Source);

    /// <summary>The named cells, or the cells of the ranking grid that push hardest towards the target (target minus source class value).</summary>
    internal static (Cell[] Cells, int Grid) SelectCells(BuiltAtlas atlas, int source, int target, PatchAttackOptions o)
    {
        // Icons are drawn only for the cells taken.
        Cell Make(Binning.AtlasCell c)
        {
            var values = c.MeanAttribution.Span;
            return new Cell(new AtlasCellId(c.GridSize, c.X, c.Y), values[target] - values[source], c.Count, c);
        }
        if (o.Cells is { } named)
            return (named.Select(id => Make(atlas.FindCell(id.GridSize, id.X, id.Y))).ToArray(), 0);
        int grid = o.GridSize ?? (atlas.IconKind == AtlasIconKind.Inversion ? atlas.IconGridSize : atlas.ImageGridSize);
        atlas.CheckGrid(grid);
        var ranked = atlas.Atlas.Level(grid).Cells
            .Where(c => c.Count >= o.MinimumCellCount && c.ExampleRows.Count > 0)
            .Select(Make)
            .OrderByDescending(c => c.Push).ThenBy(c => c.Id.Y).ThenBy(c => c.Id.X)
            .Take(o.Patches)
            .ToArray();
        if (ranked.Length == 0)
            throw new InvalidOperationException($"No cell of the {grid}x{grid} grid holds {o.MinimumCellCount} or more images; lower the minimum count or choose another grid.");
        return (ranked, grid);
    }

    /// <summary>A cell's icon, as the atlas holds it, resized to <paramref name="edge"/> pixels a side (BGRA bytes).</summary>
    private static byte[] IconPixels(byte[] png, AtlasCellId id, int edge)
    {
        using var decoded = AtlasIcons.Decode(png, $"cell {id}");
        using var resized = decoded.Resize(new SKImageInfo(edge, edge, SKColorType.Bgra8888, SKAlphaType.Unpremul),
            new SKSamplingOptions(SKFilterMode.Linear, SKMipmapMode.Linear)) ?? throw new InvalidDataException($"The icon of cell {id} could not be resized.");
        return Compact(resized);
    }

    /// <summary>A BGRA bitmap's pixels without row padding.</summary>
    internal static byte[] Compact(SKBitmap bitmap)
    {
        int row = bitmap.Width * 4;
        var src = bitmap.GetPixelSpan();
        var dst = new byte[row * bitmap.Height];
        for (int y = 0; y < bitmap.Height; y++)
            src.Slice(y * bitmap.RowBytes, row).CopyTo(dst.AsSpan(y * row));
        return dst;
    }

    /// <summary>Copies an <paramref name="edge"/>-pixel square patch into a corner of a <paramref name="w"/> x <paramref name="h"/> image (both BGRA).</summary>
    internal static void Paste(byte[] image, int w, int h, byte[] patch, int edge, PatchCorner corner)
    {
        int x0 = corner is PatchCorner.TopRight or PatchCorner.BottomRight ? w - edge : 0;
        int y0 = corner is PatchCorner.BottomLeft or PatchCorner.BottomRight ? h - edge : 0;
        for (int y = 0; y < edge; y++)
            patch.AsSpan(y * edge * 4, edge * 4).CopyTo(image.AsSpan(((y0 + y) * w + x0) * 4));
    }

    /// <summary>Uniform random opaque pixels, the same for a seed, image (its index among the readable images attacked) and placement.</summary>
    internal static byte[] Noise(byte[] buffer, int edge, int seed, int image, int placement)
    {
        ulong state = SplitMix64.Mix(((ulong)(uint)seed << 40) ^ ((ulong)(uint)image << 12) ^ (uint)placement);
        for (int i = 0; i < edge * edge; i++)
        {
            ulong r = SplitMix64.Next(ref state);
            buffer[4 * i] = (byte)r;
            buffer[4 * i + 1] = (byte)(r >> 8);
            buffer[4 * i + 2] = (byte)(r >> 16);
            buffer[4 * i + 3] = 255;
        }
        return buffer;
    }
}
