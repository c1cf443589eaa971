namespace Microsoft.ML.ActivationAtlas;

/// <summary>
/// The default column names of the atlas stages, in one place so that each stage's default output is the next stage's
/// default input: <see cref="Image"/> → extraction → <see cref="Activation"/> and <see cref="Position"/> →
/// attribution → <see cref="Attribution"/>; <see cref="Activation"/> → UMAP or t-SNE → <see cref="Layout"/> → grid
/// binning → <see cref="GridCell"/> → aggregation (reading <see cref="Activation"/> and <see cref="Attribution"/>);
/// <see cref="Direction"/> → feature inversion → <see cref="Icon"/> and <see cref="IconFidelity"/>.
/// </summary>
public static class AtlasColumnNames
{
    /// <summary>The input images (file paths, images or planar pixel vectors): <c>Image</c>.</summary>
    public const string Image = "Image";

    /// <summary>A single layer's activation vector: <c>Activation</c>.</summary>
    public const string Activation = "Activation";

    /// <summary>The sampled position [y, x] on the layer's grid: <c>Position</c>.</summary>
    public const string Position = "Position";

    /// <summary>The per-class attribution vector: <c>Attribution</c>.</summary>
    public const string Attribution = "Attribution";

    /// <summary>The 2-D (or 1-D) layout: <c>Layout</c>.</summary>
    public const string Layout = "Layout";

    /// <summary>The cell index per grid size: <c>GridCell</c>.</summary>
    public const string GridCell = "GridCell";

    /// <summary>The position inside the grid (0..1 per axis): <c>GridPosition</c>.</summary>
    public const string GridPosition = "GridPosition";

    /// <summary>The direction in activation space that feature inversion visualises: <c>Direction</c>.</summary>
    public const string Direction = "Direction";

    /// <summary>The rendered icon: <c>Icon</c>.</summary>
    public const string Icon = "Icon";

    /// <summary>The icon's fidelity (cosine of its activation to the direction): <c>IconFidelity</c>.</summary>
    public const string IconFidelity = "IconFidelity";
}
