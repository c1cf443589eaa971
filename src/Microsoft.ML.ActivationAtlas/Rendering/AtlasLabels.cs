using Microsoft.ML.ActivationAtlas.Binning;

namespace Microsoft.ML.ActivationAtlas.Rendering;

/// <summary>
/// Settings of the class-name labels drawn on atlas cells (<see cref="AtlasLabels.Place"/>). The same rule is used by
/// <c>atlas.png</c> and the viewer.
/// </summary>
public sealed class AtlasLabelOptions
{
    /// <summary>
    /// A cell is labelled only when its top class value exceeds this fraction of the largest top class value over the
    /// grid's cells. Default 0.5.
    /// </summary>
    public float MinimumFraction { get; set; } = 0.5f;

    /// <summary>Smallest font, in pixels, worth drawing; smaller cells get no labels. Default 9.</summary>
    public float MinimumFontPixels { get; set; } = 9f;

    /// <summary>A cell holds a label only when its side is at least this many times the font size. Default 3.</summary>
    public float MinimumCellFonts { get; set; } = 3f;

    /// <summary>Widest label box, in cells (a label is centred on its cell and may overhang its neighbours). Default 2.</summary>
    public float MaximumWidthCells { get; set; } = 2f;

    /// <summary>
    /// A label is left out when a stronger label of the same class sits within this many cells (Chebyshev distance),
    /// so a region of one class is named once or twice, not on every cell. Default 2.
    /// </summary>
    public int SameClassSpacing { get; set; } = 2;
}

/// <summary>A class-name label placed on an atlas cell; the box is in the canvas's pixels.</summary>
/// <param name="X">Cell column.</param>
/// <param name="Y">Cell row.</param>
/// <param name="ClassIndex">The cell's top class.</param>
/// <param name="Text">The class name drawn.</param>
/// <param name="Value">The cell's top class value.</param>
/// <param name="Left">Left edge of the label box.</param>
/// <param name="Top">Top edge of the label box.</param>
/// <param name="Width">Width of the label box.</param>
/// <param name="Height">Height of the label box.</param>
public readonly record struct AtlasLabel(int X, int Y, int ClassIndex, string Text, float Value, float Left, float Top, float Width, float Height)
{
    /// <summary>Whether two label boxes overlap (touching edges do not).</summary>
    /// <param name="other">The other label.</param>
    public bool Overlaps(AtlasLabel other)
        => Left < other.Left + other.Width && other.Left < Left + Width && Top < other.Top + other.Height && other.Top < Top + Height;
}

/// <summary>
/// Chooses which atlas cells carry their top class's name, and where. The rule:
/// <list type="number">
/// <item>a cell is a candidate when it has a top class whose value is positive and above
/// <see cref="AtlasLabelOptions.MinimumFraction"/> of the largest top class value of the grid;</item>
/// <item>labels need a font of at least <see cref="AtlasLabelOptions.MinimumFontPixels"/> and cells at least
/// <see cref="AtlasLabelOptions.MinimumCellFonts"/> fonts high, else the grid gets none;</item>
/// <item>a label's box (text plus a small padding) is centred on the bottom of its cell, kept inside the canvas, and
/// at most <see cref="AtlasLabelOptions.MaximumWidthCells"/> cells wide: longer names are left out;</item>
/// <item>candidates are placed strongest first; one is skipped when its box overlaps a placed label or a placed
/// label of the same class lies within <see cref="AtlasLabelOptions.SameClassSpacing"/> cells.</item>
/// </list>
/// So no two labels overlap and every label names its cell's top class.
/// </summary>
public static class AtlasLabels
{
    /// <summary>Horizontal padding either side of the text, in fonts.</summary>
    internal const float PaddingFonts = 0.3f;

    /// <summary>Height of a label box, in fonts.</summary>
    internal const float HeightFonts = 1.35f;

    /// <summary>Places the labels of one grid drawn with square cells of <paramref name="cellPixels"/>.</summary>
    /// <param name="level">The grid.</param>
    /// <param name="cellPixels">Cell side on the canvas, in pixels.</param>
    /// <param name="fontPixels">Font size, in pixels.</param>
    /// <param name="textWidth">Width in pixels of a text at <paramref name="fontPixels"/>.</param>
    /// <param name="options">The rule's settings; null for the defaults.</param>
    public static IReadOnlyList<AtlasLabel> Place(AtlasLevel level, float cellPixels, float fontPixels, Func<string, float> textWidth, AtlasLabelOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(level);
        ArgumentNullException.ThrowIfNull(textWidth);
        options ??= new AtlasLabelOptions();
        var placed = new List<AtlasLabel>();
        if (fontPixels < options.MinimumFontPixels || cellPixels < options.MinimumCellFonts * fontPixels)
            return placed;
        float max = 0;
        foreach (var c in level.Cells)
            if (c.TopClasses.Count > 0)
                max = Math.Max(max, c.TopClasses[0].Value);
        if (!(max > 0))
            return placed;
        float side = cellPixels * level.GridSize;
        float height = fontPixels * HeightFonts;
        var candidates = level.Cells
            .Where(c => c.TopClasses.Count > 0 && c.TopClasses[0].Value > 0 && c.TopClasses[0].Value > options.MinimumFraction * max)
            .OrderByDescending(c => c.TopClasses[0].Value).ThenBy(c => c.Y).ThenBy(c => c.X);
        foreach (var cell in candidates)
        {
            var top = cell.TopClasses[0];
            float width = textWidth(top.Name) + 2 * PaddingFonts * fontPixels;
            if (width > options.MaximumWidthCells * cellPixels)
                continue;
            float left = Math.Clamp((cell.X + 0.5f) * cellPixels - width / 2, 0, Math.Max(0, side - width));
            float y = (cell.Y + 1) * cellPixels - height - 0.1f * fontPixels;
            var label = new AtlasLabel(cell.X, cell.Y, top.ClassIndex, top.Name, top.Value, left, y, width, height);
            bool free = true;
            foreach (var p in placed)
                if (label.Overlaps(p) || (p.ClassIndex == label.ClassIndex && Math.Max(Math.Abs(p.X - label.X), Math.Abs(p.Y - label.Y)) <= options.SameClassSpacing))
                {
                    free = false;
                    break;
                }
            if (free)
                placed.Add(label);
        }
        return placed;
    }
}
