namespace Microsoft.ML.ActivationAtlas.Attacks;

/// <summary>A corner of an image, where a patch is pasted.</summary>
public enum PatchCorner
{
    /// <summary>The top left corner.</summary>
    TopLeft,

    /// <summary>The top right corner.</summary>
    TopRight,

    /// <summary>The bottom left corner.</summary>
    BottomLeft,

    /// <summary>The bottom right corner.</summary>
    BottomRight,
}

/// <summary>A cell of a built atlas: cell (<paramref name="X"/>, <paramref name="Y"/>) of grid <paramref name="GridSize"/>.</summary>
/// <param name="GridSize">The grid (one of the atlas's grids).</param>
/// <param name="X">The column.</param>
/// <param name="Y">The row.</param>
public readonly record struct AtlasCellId(int GridSize, int X, int Y)
{
    /// <summary>The cell as <c>grid:x,y</c>.</summary>
    public override string ToString() => $"{GridSize}:{X},{Y}";
}

/// <summary>
/// The settings of a patch attack (<see cref="Building.BuiltAtlas.AttackWithPatches"/>): which icons are pasted, at which sizes and
/// corners, and the noise control.
/// </summary>
public sealed class PatchAttackOptions
{
    /// <summary>The defaults.</summary>
    public static class Defaults
    {
        /// <summary>Icons taken from the comparison: 4.</summary>
        public const int Patches = 4;

        /// <summary>The fixed size: 0.3 of the image side.</summary>
        public const float FixedSize = 0.3f;

        /// <summary>The fixed corner: bottom right.</summary>
        public const PatchCorner FixedCorner = PatchCorner.BottomRight;

        /// <summary>Cells with fewer images are not taken as patches: 3.</summary>
        public const int MinimumCellCount = 3;

        /// <summary>Seed of the noise patches: 1.</summary>
        public const int Seed = 1;

        /// <summary>Optimisation steps of a patch's inverted icon rendered for the attack: the build's cold-start steps, 128.</summary>
        public const int IconSteps = Building.AtlasBuildOptions.Defaults.IconSteps;

        /// <summary>Images per network call: 32.</summary>
        public const int BatchSize = 32;

        /// <summary>The patch sides, as fractions of the image side: 0.2, 0.3, 0.4.</summary>
        public static IReadOnlyList<float> Sizes { get; } = [0.2f, 0.3f, 0.4f];
    }

    /// <summary>How many icons to take: the cells whose class values push hardest towards the target. Default 4. Ignored with <see cref="Cells"/>.</summary>
    public int Patches { get; set; } = Defaults.Patches;

    /// <summary>The cells whose icons are pasted, instead of the ones that push hardest towards the target; null takes those.</summary>
    public IReadOnlyList<AtlasCellId>? Cells { get; set; }

    /// <summary>
    /// What is pasted for a cell: null (default) takes the icon the atlas holds (<see cref="Building.BuiltAtlas.Icons"/>);
    /// <see cref="Building.AtlasIconKind.Inversion"/> takes the cell's inverted icon, the atlas's own where it has one,
    /// else rendered for the attack (only the cells pasted, cold-started with <see cref="IconSteps"/> steps by the
    /// build's icon step), so an atlas built with example icons can be attacked with inverted ones;
    /// <see cref="Building.AtlasIconKind.Examples"/> takes the cell's nearest example image.
    /// </summary>
    public Building.AtlasIconKind? Icons { get; set; }

    /// <summary>Optimisation steps of an inverted icon rendered for the attack (with <see cref="Icons"/> = inversion). Default 128.</summary>
    public int IconSteps { get; set; } = Defaults.IconSteps;

    /// <summary>The grid whose cells are ranked; null: the grid with the atlas's inverted icons, or the grid of <c>atlas.png</c>.</summary>
    public int? GridSize { get; set; }

    /// <summary>Cells with fewer images are not ranked. Default 3.</summary>
    public int MinimumCellCount { get; set; } = Defaults.MinimumCellCount;

    /// <summary>The patch sides as fractions of the image side (each in (0, 1]). Default 0.2, 0.3, 0.4.</summary>
    public IReadOnlyList<float> Sizes { get; set; } = Defaults.Sizes;

    /// <summary>The corners tried. Default all four.</summary>
    public IReadOnlyList<PatchCorner> Corners { get; set; } = Enum.GetValues<PatchCorner>();

    /// <summary>The size of the fixed placement; one of <see cref="Sizes"/>. Default 0.3.</summary>
    public float FixedSize { get; set; } = Defaults.FixedSize;

    /// <summary>The corner of the fixed placement. Default bottom right.</summary>
    public PatchCorner FixedCorner { get; set; } = Defaults.FixedCorner;

    /// <summary>Attack at most this many images of the source class, the first by path; 0 takes all. Default 0.</summary>
    public int MaximumImages { get; set; }

    /// <summary>Seed of the noise patches (each image and placement gets its own noise). Default 1.</summary>
    public int Seed { get; set; } = Defaults.Seed;

    /// <summary>Images per network call. Default 32.</summary>
    public int BatchSize { get; set; } = Defaults.BatchSize;

    /// <summary>Fails, naming the option, when a setting is out of range.</summary>
    internal void Validate()
    {
        if (Cells is null && Patches < 1)
            throw new ArgumentOutOfRangeException(nameof(Patches), Patches, "Take at least one patch.");
        if (Cells is { Count: 0 })
            throw new ArgumentException("PatchAttackOptions.Cells is empty; name at least one cell or leave it null.", nameof(Cells));
        if (Sizes is null || Sizes.Count == 0 || Sizes.Any(s => !(s is > 0 and <= 1)))
            throw new ArgumentOutOfRangeException(nameof(Sizes), $"Patch sizes are fractions of the image side in (0, 1]: {string.Join(",", Sizes ?? [])}.");
        if (!Sizes.Contains(FixedSize))
            throw new ArgumentOutOfRangeException(nameof(FixedSize), FixedSize, $"The fixed size must be one of the sizes ({string.Join(",", Sizes)}).");
        if (Corners is null || Corners.Count == 0 || Corners.Any(c => !Enum.IsDefined(c)))
            throw new ArgumentOutOfRangeException(nameof(Corners), "Give at least one corner.");
        if (!Corners.Contains(FixedCorner))
            throw new ArgumentOutOfRangeException(nameof(FixedCorner), FixedCorner, $"The fixed corner must be one of the corners ({string.Join(",", Corners)}).");
        ArgumentOutOfRangeException.ThrowIfNegative(MaximumImages);
        ArgumentOutOfRangeException.ThrowIfLessThan(BatchSize, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(IconSteps, 1);
        if (Icons is { } kind && !Enum.IsDefined(kind))
            throw new ArgumentOutOfRangeException(nameof(Icons), kind, "Icons are inversion, examples or null (as the atlas holds them).");
        ArgumentOutOfRangeException.ThrowIfLessThan(MinimumCellCount, 1);
    }
}
