using Microsoft.ML.ActivationAtlas.Onnx;

namespace Microsoft.ML.ActivationAtlas.Building;

/// <summary>
/// How the icons of a class atlas or class comparison (<see cref="BuiltAtlas.WriteClassAtlas"/>,
/// <see cref="BuiltAtlas.WriteComparison"/>, <see cref="LinkedAtlas.WriteClassAtlases"/>) are drawn when the atlas
/// they come from has inverted icons (<see cref="AtlasIconKind.Inversion"/>): each cell's mean activation is inverted
/// with the settings the atlas was built with (kept in its <c>build.json</c>), coarse grid to fine, within
/// <see cref="IconBudget"/>; cells left show their nearest example image as a stand-in. An atlas with example icons
/// gives its subsets example icons, and these options do not matter.
/// </summary>
public sealed class SubsetIconOptions
{
    /// <summary>
    /// Wall-clock time for the inverted icons; no icon starts after it. Null (default): as for a build,
    /// <see cref="AtlasBuildOptions.Defaults.IconBudget"/> on the CPU and unlimited with CUDA;
    /// <see cref="Timeout.InfiniteTimeSpan"/>: unlimited. Must be positive. Linked class atlases share it equally among
    /// their layers.
    /// </summary>
    public TimeSpan? IconBudget { get; set; }

    /// <summary>Where ONNX Runtime runs the inversion (CPU by default; CUDA with fallback), threads and spinning.</summary>
    public OnnxSessionOptions Session { get; set; } = new();

    /// <summary>The budget as used (null: unlimited), after checking it.</summary>
    internal TimeSpan? ResolvedIconBudget
    {
        get
        {
            if (IconBudget is { } budget && budget != Timeout.InfiniteTimeSpan && budget <= TimeSpan.Zero)
                throw new ArgumentOutOfRangeException(nameof(IconBudget), budget,
                    $"SubsetIconOptions.IconBudget must be positive (or Timeout.InfiniteTimeSpan for no limit); {budget} leaves no time for icons.");
            return AtlasBuildOptions.ResolveIconBudget(IconBudget, (Session ?? new()).UseCuda);
        }
    }
}
