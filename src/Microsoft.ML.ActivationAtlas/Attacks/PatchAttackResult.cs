using Microsoft.ML.ActivationAtlas.Histogram;

namespace Microsoft.ML.ActivationAtlas.Attacks;

/// <summary>A proportion with its 95% Wilson score interval (<see cref="CountStatistics.WilsonInterval"/>).</summary>
public readonly record struct Proportion
{
    /// <summary>A proportion of <paramref name="count"/> in <paramref name="total"/>.</summary>
    /// <param name="count">The count.</param>
    /// <param name="total">The total.</param>
    public Proportion(int count, int total)
    {
        Count = count;
        Total = total;
        (Low, High) = CountStatistics.WilsonInterval(count, total);
    }

    /// <summary>The count.</summary>
    public int Count { get; }

    /// <summary>The total.</summary>
    public int Total { get; }

    /// <summary>Count / total (0 when the total is 0).</summary>
    public double Rate => Total == 0 ? 0 : (double)Count / Total;

    /// <summary>The lower end of the 95% Wilson interval.</summary>
    public double Low { get; }

    /// <summary>The upper end of the 95% Wilson interval.</summary>
    public double High { get; }

    /// <summary>The rate and interval as percentages, e.g. <c>41.2% [38.2, 44.3]</c>.</summary>
    public override string ToString() => FormattableString.Invariant($"{100 * Rate:0.0}% [{100 * Low:0.0}, {100 * High:0.0}]");
}

/// <summary>Where a patch is pasted: its side as a fraction of the image side, and the corner.</summary>
/// <param name="Size">The side, a fraction of the image side.</param>
/// <param name="Corner">The corner.</param>
public readonly record struct PatchPlacement(float Size, PatchCorner Corner)
{
    /// <summary>The placement as <c>0.3 bottom-right</c>.</summary>
    public override string ToString() => FormattableString.Invariant($"{Size:0.##} {Corner switch
    {
        PatchCorner.TopLeft => "top-left",
        PatchCorner.TopRight => "top-right",
        PatchCorner.BottomLeft => "bottom-left",
        _ => "bottom-right",
    }}");
}

/// <summary>What one patch did at one placement.</summary>
/// <param name="Placement">The placement.</param>
/// <param name="ToTarget">The images now classified as the target class.</param>
/// <param name="LeftSource">The images no longer classified as the source class.</param>
public sealed record PatchPlacementResult(PatchPlacement Placement, Proportion ToTarget, Proportion LeftSource);

/// <summary>One patch of an attack: an atlas icon, or the random-noise control.</summary>
public sealed class PatchAttackPatch
{
    internal PatchAttackPatch(AtlasCellId? cell, float targetPush, int cellCount, byte[]? icon, PatchPlacementResult[] placements, int fixedIndex)
    {
        Cell = cell;
        TargetPush = targetPush;
        CellCount = cellCount;
        Icon = icon;
        Placements = placements;
        Fixed = placements[fixedIndex];
        int best = 0;
        for (int i = 1; i < placements.Length; i++)
            if (placements[i].ToTarget.Count > placements[best].ToTarget.Count)
                best = i;
        Best = placements[best];
    }

    /// <summary>True for the random-noise control.</summary>
    public bool IsNoise => Cell is null;

    /// <summary>The atlas cell whose icon is the patch; null for noise.</summary>
    public AtlasCellId? Cell { get; }

    /// <summary>The cell's mean class value of the target minus that of the source (how hard it pushes towards the target); 0 for noise.</summary>
    public float TargetPush { get; }

    /// <summary>The number of atlas images in the cell; 0 for noise.</summary>
    public int CellCount { get; }

    /// <summary>The icon as the atlas holds it (PNG); null for noise.</summary>
    public byte[]? Icon { get; }

    /// <summary>Every placement: each size in order, with each corner tried (<see cref="PatchAttackOptions.Corners"/>).</summary>
    public IReadOnlyList<PatchPlacementResult> Placements { get; }

    /// <summary>The fixed placement (<see cref="PatchAttackOptions.FixedSize"/>, <see cref="PatchAttackOptions.FixedCorner"/>).</summary>
    public PatchPlacementResult Fixed { get; }

    /// <summary>
    /// The placement that sent most images to the target. Chosen on the same images it is measured on, so its rate is
    /// optimistic, the more so the more placements are tried; compare it with the noise control's best.
    /// </summary>
    public PatchPlacementResult Best { get; }
}

/// <summary>The outcome of pasting atlas icons onto the images of one class: how often the classifier's answer flips.</summary>
public sealed class PatchAttackResult
{
    internal PatchAttackResult(string source, string target, IReadOnlyList<string> images, IReadOnlyList<string> skipped, Proportion cleanTarget,
        Proportion cleanSource, IReadOnlyList<PatchAttackPatch> patches, PatchAttackPatch noise, IReadOnlyList<PatchPlacement> placements,
        PatchPlacement fixedPlacement, int gridSize, int[] predictions, IReadOnlyList<string> classNames, Building.AtlasIconKind iconKind)
    {
        IconKind = iconKind;
        SourceClass = source;
        TargetClass = target;
        Images = images;
        SkippedImages = skipped;
        CleanTarget = cleanTarget;
        CleanSource = cleanSource;
        Patches = patches;
        Noise = noise;
        Placements = placements;
        FixedPlacement = fixedPlacement;
        GridSize = gridSize;
        Predictions = predictions;
        ClassNames = classNames;
    }

    /// <summary>The class whose images are attacked.</summary>
    public string SourceClass { get; }

    /// <summary>The class the patches push towards.</summary>
    public string TargetClass { get; }

    /// <summary>The images attacked (readable images of the source class).</summary>
    public IReadOnlyList<string> Images { get; }

    /// <summary>Images of the source class that could not be read, with the reason.</summary>
    public IReadOnlyList<string> SkippedImages { get; }

    /// <summary>Without a patch: the images classified as the target (the baseline of every flip rate).</summary>
    public Proportion CleanTarget { get; }

    /// <summary>Without a patch: the images classified as their own class, the source.</summary>
    public Proportion CleanSource { get; }

    /// <summary>The icon patches, in the order taken (hardest push towards the target first, or as named).</summary>
    public IReadOnlyList<PatchAttackPatch> Patches { get; }

    /// <summary>The control: uniform random noise patches of the same sizes and corners, new noise for every image.</summary>
    public PatchAttackPatch Noise { get; }

    /// <summary>Every placement tried, in the order of <see cref="PatchAttackPatch.Placements"/>.</summary>
    public IReadOnlyList<PatchPlacement> Placements { get; }

    /// <summary>The fixed placement.</summary>
    public PatchPlacement FixedPlacement { get; }

    /// <summary>The grid whose cells were ranked (0 when the cells were named).</summary>
    public int GridSize { get; }

    /// <summary>The classifier's classes.</summary>
    public IReadOnlyList<string> ClassNames { get; }

    /// <summary>
    /// What the icon patches are: inverted icons or example images (<see cref="PatchAttackOptions.Icons"/>, or the atlas's
    /// icon kind when that is null; an inverted atlas whose icon budget ran out shows example stand-ins in some cells).
    /// </summary>
    public Building.AtlasIconKind IconKind { get; }

    /// <summary>Predicted class per image and run: [image, 1 + (patches + 1) x placements], clean first, then each patch's placements, noise last.</summary>
    internal int[] Predictions { get; }

    /// <summary>The runs per image.</summary>
    internal int RunsPerImage => 1 + (Patches.Count + 1) * Placements.Count;

    /// <summary>The predicted class of image <paramref name="image"/> with patch <paramref name="patch"/> (its index, or <see cref="Patches"/>' count for noise) at placement <paramref name="placement"/>.</summary>
    internal int Predicted(int image, int patch, int placement) => Predictions[image * RunsPerImage + 1 + patch * Placements.Count + placement];
}
