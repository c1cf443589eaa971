using System.Text.Json;
using Microsoft.ML.ActivationAtlas.Binning;

namespace Microsoft.ML.ActivationAtlas.Rendering;

/// <summary>
/// Writes an atlas's cells as JSON for other tools: per grid, each kept cell's x, y, count, top classes with values
/// and example rows (mean activations are left out; they are in the atlas data view).
/// </summary>
public static class AtlasJsonWriter
{
    /// <summary>Writes <paramref name="atlas"/> to <paramref name="path"/> (to a temporary name, then renamed).</summary>
    /// <param name="atlas">The aggregated atlas.</param>
    /// <param name="path">The JSON file.</param>
    /// <param name="modelName">The model, recorded in the file.</param>
    /// <param name="layerName">The layer, recorded in the file.</param>
    public static void Write(GridAtlas atlas, string path, string modelName, string layerName)
    {
        ArgumentNullException.ThrowIfNull(atlas);
        var document = new
        {
            model = modelName,
            layer = layerName,
            rows = atlas.RowCount,
            activationSize = atlas.ActivationSize,
            classes = atlas.ClassNames,
            grids = atlas.Levels.Select(l => new
            {
                size = l.GridSize,
                cells = l.Cells.Select(c => new
                {
                    x = c.X,
                    y = c.Y,
                    n = c.Count,
                    top = c.TopClasses.Select(t => new { @class = t.Name, index = t.ClassIndex, value = t.Value }),
                    examples = c.ExampleRows,
                }),
            }),
        };
        AtomicOutput.WriteFile(path, s => JsonSerializer.Serialize(s, document, new JsonSerializerOptions { WriteIndented = false }));
    }
}
