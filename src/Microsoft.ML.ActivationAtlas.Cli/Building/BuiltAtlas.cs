using Microsoft.ML.ActivationAtlas.Binning;
using Microsoft.ML.ActivationAtlas.Persistence;
using Microsoft.ML.ActivationAtlas.Projection;
using Microsoft.ML.ActivationAtlas.Rendering;

namespace Microsoft.ML.ActivationAtlas.Cli.Building;

/// <summary>
/// A finished atlas folder opened again: its rows, cached activations and class values, the fitted pipeline
/// (<c>model.zip</c>), and the atlas re-aggregated from them (aggregation is fast; nothing is recomputed by a network).
/// </summary>
internal sealed class BuiltAtlas
{
    private BuiltAtlas() { }

    public string Folder { get; private init; } = "";

    public AtlasFolder.RowList Rows { get; private init; } = null!;

    public AtlasFolder.BuildSettings Settings { get; private init; } = null!;

    public float[] Activations { get; private init; } = [];

    public int Dim { get; private init; }

    public float[] ClassValues { get; private init; } = [];

    public ITransformer Pipeline { get; private init; } = null!;

    public DataViewSchema InputSchema { get; private init; } = null!;

    public UmapTransformer Umap { get; private init; } = null!;

    public BinToGridTransformer Grid { get; private init; } = null!;

    public int RowCount => Rows.Paths.Length;

    public int ClassCount => Settings.ClassNames.Length;

    public static BuiltAtlas Open(MLContext ml, string folder)
    {
        var (rows, settings) = AtlasFolder.Open(folder);
        var cache = new StageCache(Path.Combine(folder, AtlasFolder.CacheFolder));
        if (!cache.TryLoadAny("activations", out var activations, out int n, out int dim) || n != rows.Paths.Length)
            throw new InvalidDataException($"'{folder}': the cached activations ({AtlasFolder.CacheFolder}/activations.bin) are missing or do not match {AtlasFolder.RowsFile}.");
        string modelPath = Path.Combine(folder, AtlasFolder.ModelFile);
        if (!File.Exists(modelPath))
            throw new InvalidDataException($"'{folder}' has no fitted pipeline ({AtlasFolder.ModelFile}).");
        var pipeline = ml.Model.LoadAtlas(modelPath, out var schema);
        var stages = ((IEnumerable<ITransformer>)pipeline).ToArray();
        if (!cache.TryLoadAny("classes", out var classValues, out int cn, out int k) || cn != n || k != settings.ClassNames.Length)
            throw new InvalidDataException($"'{folder}': the cached class values ({AtlasFolder.CacheFolder}/classes.bin) are missing or do not match {AtlasFolder.SettingsFile}.");
        return new BuiltAtlas
        {
            Folder = folder,
            Rows = rows,
            Settings = settings,
            Activations = activations,
            Dim = dim,
            ClassValues = classValues,
            Pipeline = pipeline,
            InputSchema = schema,
            Umap = stages.OfType<UmapTransformer>().Single(),
            Grid = stages.OfType<BinToGridTransformer>().Single(),
        };
    }

    /// <summary>Index of a class by name, with an error listing the known classes.</summary>
    public int ClassIndex(string name)
    {
        for (int i = 0; i < Settings.ClassNames.Length; i++)
            if (string.Equals(Settings.ClassNames[i], name, StringComparison.OrdinalIgnoreCase))
                return i;
        throw new ArgumentException(Settings.ClassNames.Length == 0
            ? $"Unknown class '{name}': the atlas has no classes (its images were not in class sub-folders)."
            : $"Unknown class '{name}'. Known classes: {string.Join(", ", Settings.ClassNames)}.");
    }

    /// <summary>The atlas of the build, re-aggregated from the cached activations with the fitted layout and grid.</summary>
    public GridAtlas Aggregate(MLContext ml, IProgress<double>? progress, CancellationToken cancellationToken)
    {
        var view = Matrices.View(RowCount, ("Activation", Activations, Dim), ("Labels", ClassValues, ClassCount));
        var laidOut = Umap.Transform(view);
        return ml.Data.AggregateAtlas(Grid.Transform(laidOut), new AtlasAggregationOptions
        {
            AttributionColumnName = ClassCount > 0 ? "Labels" : null,
            ClassNames = Settings.ClassNames,
        }, progress, cancellationToken);
    }

    /// <summary>
    /// The build's icons at its icon size: each cell's nearest example image, replaced by the cell's feature-inversion
    /// icon where the build made one (<c>--icons inversion</c>, kept in <c>cache/icons-&lt;grid&gt;/</c>).
    /// </summary>
    public AtlasIcons Icons(GridAtlas atlas)
    {
        var icons = AtlasIcons.FromNearestExamples(atlas, row => Rows.Paths[row], Settings.IconSize);
        foreach (var folder in Directory.EnumerateDirectories(Path.Combine(Folder, AtlasFolder.CacheFolder), "icons-*"))
            if (int.TryParse(Path.GetFileName(folder)["icons-".Length..], out int grid) && atlas.Levels.Any(l => l.GridSize == grid))
                foreach (var cell in atlas.Level(grid).Cells)
                    if (File.Exists(Path.Combine(folder, $"{cell.X}_{cell.Y}.png")))
                        icons.Set(grid, cell.X, cell.Y, File.ReadAllBytes(Path.Combine(folder, $"{cell.X}_{cell.Y}.png")));
        return icons;
    }
}
