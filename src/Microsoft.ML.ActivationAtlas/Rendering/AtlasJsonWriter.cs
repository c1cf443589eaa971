using System.Text.Json;
using Microsoft.ML.ActivationAtlas.Binning;

namespace Microsoft.ML.ActivationAtlas.Rendering;

/// <summary>
/// Writes an atlas's cells as JSON for other tools: per grid, each kept cell's x, y, count, top classes with values
/// and example rows (mean activations are left out; they are in the atlas data view); with the icons, what each cell
/// is drawn as (<c>icon</c>: <c>inversion</c> or <c>example</c>) and, for an inverted icon, its fidelity, plausibility,
/// optimisation steps, whether it was warm-started from its parent cell, and its downstream agreement (the cosine of
/// its pooled features with its members' mean, the cell's and the icon's top class, and whether they match).
/// </summary>
public static class AtlasJsonWriter
{
    private static readonly JsonSerializerOptions Compact = new()
    {
        WriteIndented = false,
        DefaultIgnoreCondition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull,
    };

    /// <summary>Writes <paramref name="atlas"/> to <paramref name="path"/> (to a temporary name, then renamed).</summary>
    /// <param name="atlas">The aggregated atlas.</param>
    /// <param name="path">The JSON file.</param>
    /// <param name="modelName">The model, recorded in the file.</param>
    /// <param name="layerName">The layer, recorded in the file.</param>
    public static void Write(GridAtlas atlas, string path, string modelName, string layerName) => Write(atlas, null, path, modelName, layerName);

    /// <summary>
    /// Writes <paramref name="atlas"/> with what its cells are drawn as to <paramref name="path"/> (to a temporary name,
    /// then renamed): per cell <c>icon</c> (<c>inversion</c>, or <c>example</c> for an example image, a stand-in where
    /// the atlas has inverted icons) and, for inverted icons, <c>fidelity</c>, <c>plausibility</c>, <c>steps</c>,
    /// <c>warmStarted</c>, <c>agreement</c>, <c>cellClass</c>, <c>iconClass</c> and <c>classMatch</c> (those measured); at
    /// the top, <c>icons</c> counts the inverted cells per grid, carries <paramref name="iconNote"/> and, in
    /// <c>quality</c>, the medians of fidelity, plausibility and agreement and the top-class matches.
    /// </summary>
    /// <param name="atlas">The aggregated atlas.</param>
    /// <param name="icons">Its icons; null leaves the icon fields out.</param>
    /// <param name="path">The JSON file.</param>
    /// <param name="modelName">The model, recorded in the file.</param>
    /// <param name="layerName">The layer, recorded in the file.</param>
    /// <param name="iconNote">A sentence on the icons (e.g. why some cells are example stand-ins), or null.</param>
    public static void Write(GridAtlas atlas, AtlasIcons? icons, string path, string modelName, string layerName, string? iconNote = null)
    {
        ArgumentNullException.ThrowIfNull(atlas);
        var document = new
        {
            model = modelName,
            layer = layerName,
            rows = atlas.RowCount,
            activationSize = atlas.ActivationSize,
            classes = atlas.ClassNames,
            icons = icons is null ? null : new
            {
                kind = icons.InvertedCount > 0 ? "inversion" : "examples",
                inverted = atlas.Levels.Select(l => new { size = l.GridSize, cells = l.Cells.Count(c => icons.Inversion(l.GridSize, c.X, c.Y) is not null), of = l.Cells.Count }),
                note = iconNote,
                quality = icons.InvertedCount == 0 ? null : Quality(icons.Quality()),
            },
            grids = atlas.Levels.Select(l => new
            {
                size = l.GridSize,
                cells = l.Cells.Select(c =>
                {
                    var inverted = icons?.Inversion(l.GridSize, c.X, c.Y);
                    return new
                    {
                        x = c.X,
                        y = c.Y,
                        n = c.Count,
                        top = c.TopClasses.Select(t => new { @class = t.Name, index = t.ClassIndex, value = t.Value }),
                        examples = c.ExampleRows,
                        icon = icons is null ? null : inverted is null ? "example" : "inversion",
                        fidelity = inverted is null ? (double?)null : Math.Round(inverted.Fidelity, 4),
                        plausibility = inverted?.Plausibility is double p ? Math.Round(p, 4) : (double?)null,
                        steps = inverted?.Steps,
                        warmStarted = inverted?.WarmStarted,
                        agreement = inverted?.Agreement is double g ? Math.Round(g, 4) : (double?)null,
                        cellClass = inverted?.CellTopClass,
                        iconClass = inverted?.IconTopClass,
                        classMatch = inverted?.TopClassMatches,
                    };
                }),
            }),
        };
        AtomicOutput.WriteFile(path, s => JsonSerializer.Serialize(s, document, Compact));
    }

    private static object Quality(InvertedIconQuality q) => new
    {
        medianFidelity = q.Fidelity is double f ? Math.Round(f, 4) : (double?)null,
        medianPlausibility = q.Plausibility is double p ? Math.Round(p, 4) : (double?)null,
        medianAgreement = q.Agreement is double g ? Math.Round(g, 4) : (double?)null,
        classMatches = q.ClassCompared > 0 ? q.ClassMatches : (int?)null,
        classCompared = q.ClassCompared > 0 ? q.ClassCompared : (int?)null,
    };
}
