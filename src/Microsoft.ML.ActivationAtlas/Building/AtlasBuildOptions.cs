using Microsoft.ML.ActivationAtlas.Extraction;
using Microsoft.ML.ActivationAtlas.Inversion.Objectives;
using Microsoft.ML.ActivationAtlas.Onnx;

namespace Microsoft.ML.ActivationAtlas.Building;

/// <summary>How the cells' per-class values of a built atlas are obtained.</summary>
public enum AtlasHeadKind
{
    /// <summary>No classifier: each cell's class values are the shares of its images' labels (sub-folder names).</summary>
    None,

    /// <summary>
    /// A linear head trained on the labelled images' spatially averaged layer activations (on a token layer, the mean of
    /// its patch tokens), attached after the layer; the class values are the attributions to its classes.
    /// </summary>
    Train,

    /// <summary>An ONNX classifier containing the layer (<see cref="AtlasBuildOptions.HeadModel"/>): attributions to its logits.</summary>
    Model,
}

/// <summary>What each cell of a built atlas is drawn as.</summary>
public enum AtlasIconKind
{
    /// <summary>The cell's member image nearest the cell's mean activation (the older "CNN codes" view).</summary>
    Examples,

    /// <summary>
    /// Feature-inversion icons of the cells' mean activations, coarse grid to fine, each finer cell warm-started from its
    /// parent's icon, as far as <see cref="AtlasBuildOptions.IconBudget"/> allows; the other cells keep their example
    /// image as a stand-in, marked as such in <c>atlas.json</c> and the viewer.
    /// </summary>
    Inversion,
}

/// <summary>Settings of <see cref="AtlasBuilder"/>. Defaults are in <see cref="Defaults"/> and documented on each member.</summary>
public sealed class AtlasBuildOptions
{
    /// <summary>The defaults of the atlas build, shared by these options and the command line's usage text.</summary>
    public static class Defaults
    {
        /// <summary>Seed of the image sample, the activation positions and the layout: 1.</summary>
        public const int Seed = 1;

        /// <summary>UMAP neighbours: 20 (the article's).</summary>
        public const int NumberOfNeighbors = 20;

        /// <summary>UMAP minimum distance: 0.01 (the article's).</summary>
        public const float MinDist = 0.01f;

        /// <summary>Nested grid sizes: 20, 40, 80, 160.</summary>
        public static IReadOnlyList<int> GridSizes { get; } = [20, 40, 80, 160];

        /// <summary>The grid drawn in <c>atlas.png</c>: 40 when it is one of the grids, else the coarsest.</summary>
        public const int ImageGridSize = 40;

        /// <summary>Icon side in pixels: 64.</summary>
        public const int IconSize = 64;

        /// <summary>
        /// Optimisation steps of a cold-started inverted icon (the coarsest grid's): 128, the renderer's default. On
        /// ResNet18's <c>ReLU393_Output_0</c> at 80 px, with the renderer's defaults (Adam 0.2 with cosine decay, lucid's
        /// standard transforms), the median fidelity to CIFAR-10 cells was 0.79 / 0.84 after 64 / 128 steps, against 0.67
        /// for lucid's settings at 512 steps x 2 attempts. Finer cells start from their parent's icon and take the
        /// renderer's warm-start steps (a quarter of these: 32; after 16 steps the median was already 0.79, against 0.55 cold).
        /// </summary>
        public const int IconSteps = Inversion.FeatureInversionEstimator.Options.Defaults.Steps;

        /// <summary>
        /// The time for inverted icons when ONNX Runtime runs on the CPU: 10 minutes, which covers at least the coarsest
        /// grid of the 10,000-image CIFAR-10 atlas (226 cells of 20x20) on two cores. With CUDA the default is unlimited.
        /// </summary>
        public static TimeSpan IconBudget { get; } = TimeSpan.FromMinutes(10);

        /// <summary>Cells with fewer images keep their example icon: 1.</summary>
        public const int IconMinimumCount = 1;

        /// <summary>Cells with fewer images are left out: 1.</summary>
        public const int MinimumCount = 1;

        /// <summary>Images per ONNX Runtime call: 32.</summary>
        public const int BatchSize = 32;

        /// <summary>Rows per stored page of activations (the unit an interrupted extraction resumes from): 2,048.</summary>
        public const int PageRows = 2048;
    }

    /// <summary>The network (required): <see cref="ActivationModel.FromFile"/> or <see cref="PretrainedModels.ResNet18"/>.</summary>
    public ActivationModel? Model { get; set; }

    /// <summary>A name for the model in titles and <c>atlas.json</c>; null (default) uses the built-in name or the model's description.</summary>
    public string? ModelName { get; set; }

    /// <summary>
    /// The layer (required): tensor name (e.g. <c>ReLU393_Output_0</c>) or friendly name of a spatial layer [N, C, H, W]
    /// or a token layer of a vision transformer (see <see cref="Tokens"/>).
    /// </summary>
    public string Layer { get; set; } = "";

    /// <summary>
    /// How a vision transformer's token layers are laid out ([N, T, C] or [N, C, T], class and register tokens before
    /// the row-major patch grid); positions are patch tokens and a trained head reads the mean of the patch tokens.
    /// Default null: <see cref="TokenLayout.Default"/> ([N, T, C], one class token, no registers).
    /// </summary>
    public TokenLayout? Tokens { get; set; }

    /// <summary>Images to use, a seeded random sample of the folder; 0 (default) uses all.</summary>
    public int Samples { get; set; }

    /// <summary>Seed of the image sample, the activation positions and the layout. Default <see cref="Defaults.Seed"/>.</summary>
    public int Seed { get; set; } = Defaults.Seed;

    /// <summary>
    /// <see cref="ActivationSampling.RandomPosition"/> (default: one random position per image) or
    /// <see cref="ActivationSampling.SpatialMean"/>.
    /// </summary>
    public ActivationSampling Sampling { get; set; } = ActivationSampling.RandomPosition;

    /// <summary>UMAP neighbours. Default <see cref="Defaults.NumberOfNeighbors"/> (fewer when the folder is smaller).</summary>
    public int NumberOfNeighbors { get; set; } = Defaults.NumberOfNeighbors;

    /// <summary>UMAP minimum distance. Default <see cref="Defaults.MinDist"/>.</summary>
    public float MinDist { get; set; } = Defaults.MinDist;

    /// <summary>
    /// True (default): the layout's optimisation runs on one thread in a fixed order, so a seeded build gives
    /// byte-identical outputs. False: the parallel optimisation, faster on several cores but different from run to run.
    /// </summary>
    public bool DeterministicLayout { get; set; } = true;

    /// <summary>
    /// With an ONNX classifier (<see cref="HeadModel"/>): attribute through max pools with the article's relaxation (the
    /// tangent averaged over each pooling window instead of routed to its maximum). Default false.
    /// </summary>
    public bool MaxPoolRelaxation { get; set; }

    /// <summary>Nested grid sizes. Default <see cref="Defaults.GridSizes"/>.</summary>
    public int[] GridSizes { get; set; } = Defaults.GridSizes.ToArray();

    /// <summary>
    /// The grid drawn in <c>atlas.png</c>; null (default): <see cref="Defaults.ImageGridSize"/> when it is a grid, else the
    /// coarsest; with inverted icons that the budget stopped short of that grid, the finest coarser grid whose cells are all inverted.
    /// </summary>
    public int? ImageGridSize { get; set; }

    /// <summary>Icon side in pixels in the viewer and <c>atlas.png</c>. Default <see cref="Defaults.IconSize"/>.</summary>
    public int IconSize { get; set; } = Defaults.IconSize;

    /// <summary>
    /// What each cell is drawn as. Default <see cref="AtlasIconKind.Inversion"/>: feature-inversion icons of the cells'
    /// mean activations, as far as <see cref="IconBudget"/> allows; <see cref="AtlasIconKind.Examples"/> draws each
    /// cell's nearest example image.
    /// </summary>
    public AtlasIconKind Icons { get; set; } = AtlasIconKind.Inversion;

    /// <summary>The finest grid whose cells get inverted icons; null (default): every grid, coarse to fine, as far as <see cref="IconBudget"/> allows.</summary>
    public int? IconGridSize { get; set; }

    /// <summary>
    /// Wall-clock time for inverted icons; no icon starts after it and the cells left keep their example image as a
    /// stand-in. Null (default): <see cref="Defaults.IconBudget"/> on the CPU, unlimited with CUDA
    /// (<see cref="OnnxSessionOptions.UseCuda"/>); <see cref="Timeout.InfiniteTimeSpan"/>: unlimited. Must be positive.
    /// Linked layer atlases (<c>BuildLayers</c>) share it equally among their layers.
    /// </summary>
    public TimeSpan? IconBudget { get; set; }

    /// <summary>
    /// Optimisation steps of a cold-started inverted icon (the coarsest grid's cells). Default <see cref="Defaults.IconSteps"/>.
    /// Finer cells are warm-started from their parent's icon and take the inversion's warm-start steps (a quarter of these).
    /// </summary>
    public int IconSteps { get; set; } = Defaults.IconSteps;

    /// <summary>
    /// Whitening of the inverted icons' objective against the layer's activation statistics, fitted from the atlas's rows
    /// (<see cref="WhiteningKind.SecondMomentInverse"/>: the article's choice, directions many images share count less).
    /// Default <see cref="WhiteningKind.None"/>. The atlases of its subsets (class atlases, comparisons, patch attacks)
    /// invert their cells with the same whitening, fitted from the same rows.
    /// </summary>
    public WhiteningKind IconWhitening { get; set; } = WhiteningKind.None;

    /// <summary>Cells with fewer images keep their example icon when icons are inverted. Default <see cref="Defaults.IconMinimumCount"/>.</summary>
    public int IconMinimumCount { get; set; } = Defaults.IconMinimumCount;

    /// <summary>Cells with fewer images are left out of the atlas. Default <see cref="Defaults.MinimumCount"/>.</summary>
    public int MinimumCount { get; set; } = Defaults.MinimumCount;

    /// <summary>Images per ONNX Runtime call. Default <see cref="Defaults.BatchSize"/>.</summary>
    public int BatchSize { get; set; } = Defaults.BatchSize;

    /// <summary>The cells' class values. Default <see cref="AtlasHeadKind.None"/> (label shares).</summary>
    public AtlasHeadKind Head { get; set; } = AtlasHeadKind.None;

    /// <summary>The ONNX classifier for <see cref="AtlasHeadKind.Model"/>; it must contain <see cref="Layer"/>.</summary>
    public ActivationModel? HeadModel { get; set; }

    /// <summary>False (default): a folder holding unreadable image files is refused, naming them. True: they are skipped, counted and listed in <c>build.json</c>.</summary>
    public bool SkipUnreadableImages { get; set; }

    /// <summary>Rows per stored page of activations, the unit an interrupted extraction resumes from. Default <see cref="Defaults.PageRows"/>.</summary>
    public int PageRows { get; set; } = Defaults.PageRows;

    /// <summary>Where the finished stages are kept for resuming; null (default) keeps them as files in <c>&lt;out&gt;.partial/cache</c>, which becomes <c>&lt;out&gt;/cache</c>.</summary>
    public IAtlasStageStore? StageStore { get; set; }

    /// <summary>Where ONNX Runtime runs (CPU by default; CUDA with fallback), threads and spinning.</summary>
    public OnnxSessionOptions Session { get; set; } = new();

    internal AtlasBuildOptions Clone()
    {
        var c = (AtlasBuildOptions)MemberwiseClone();
        c.GridSizes = GridSizes.ToArray();
        c.Session = Session.Clone();
        return c;
    }

    /// <summary>The icon budget actually used: null when unlimited.</summary>
    internal TimeSpan? ResolvedIconBudget => ResolveIconBudget(IconBudget, Session.UseCuda);

    /// <summary>An icon budget as used: null when unlimited; when not given, <see cref="Defaults.IconBudget"/> on the CPU and unlimited with CUDA.</summary>
    internal static TimeSpan? ResolveIconBudget(TimeSpan? budget, bool cuda) =>
        budget is { } b ? (b == Timeout.InfiniteTimeSpan ? null : b) : (cuda ? null : Defaults.IconBudget);

    /// <summary>The image grid actually used.</summary>
    internal int ResolvedImageGridSize => ImageGridSize ?? (GridSizes.Contains(Defaults.ImageGridSize) ? Defaults.ImageGridSize : GridSizes.Min());

    /// <summary>Checks the settings; errors name the option at fault.</summary>
    internal void Validate()
    {
        if (Model is null)
            throw new ArgumentException("AtlasBuildOptions.Model is required: ActivationModel.FromFile(...) or PretrainedModels.ResNet18.");
        if (string.IsNullOrWhiteSpace(Layer))
            throw new ArgumentException("AtlasBuildOptions.Layer is required: the layer's tensor or friendly name.");
        if (Sampling is not (ActivationSampling.RandomPosition or ActivationSampling.SpatialMean))
            throw new ArgumentException($"AtlasBuildOptions.Sampling: {Sampling} gives other than one row per image; use RandomPosition or SpatialMean.");
        if (GridSizes is null || GridSizes.Length == 0)
            throw new ArgumentException("AtlasBuildOptions.GridSizes: give at least one grid size.");
        _ = new Binning.GridLevels(GridSizes);
        if (!GridSizes.Contains(ResolvedImageGridSize))
            throw new ArgumentException($"AtlasBuildOptions.ImageGridSize: {ResolvedImageGridSize} is not one of the grids ({string.Join(",", GridSizes)}).");
        if (IconGridSize is int iconGrid && !GridSizes.Contains(iconGrid))
            throw new ArgumentException($"AtlasBuildOptions.IconGridSize: {iconGrid} is not one of the grids ({string.Join(",", GridSizes)}).");
        if (IconBudget is { } budget && budget != Timeout.InfiniteTimeSpan && budget <= TimeSpan.Zero)
            throw new ArgumentOutOfRangeException(nameof(IconBudget), budget,
                $"AtlasBuildOptions.IconBudget must be positive (or Timeout.InfiniteTimeSpan for no limit); {budget} leaves no time for icons: use Icons = AtlasIconKind.Examples for none.");
        if (Head == AtlasHeadKind.Model && HeadModel is null)
            throw new ArgumentException("AtlasBuildOptions.HeadModel is required with Head = Model: an ONNX classifier containing the layer.");
        if (!Enum.IsDefined(IconWhitening))
            throw new ArgumentOutOfRangeException(nameof(IconWhitening), IconWhitening, "AtlasBuildOptions.IconWhitening is None, SecondMomentInverse or Zca.");
        Positive(IconSize, nameof(IconSize));
        Positive(IconSteps, nameof(IconSteps));
        Positive(BatchSize, nameof(BatchSize));
        Positive(PageRows, nameof(PageRows));
        Positive(NumberOfNeighbors, nameof(NumberOfNeighbors));
        Positive(MinimumCount, nameof(MinimumCount));
        if (Samples < 0)
            throw new ArgumentOutOfRangeException(nameof(Samples), Samples, "AtlasBuildOptions.Samples must be 0 (all) or positive.");
    }

    private static void Positive(int value, string name)
    {
        if (value < 1)
            throw new ArgumentOutOfRangeException(name, value, $"AtlasBuildOptions.{name} must be at least 1.");
    }
}
