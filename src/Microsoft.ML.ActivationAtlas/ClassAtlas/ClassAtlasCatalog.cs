using Microsoft.ML.ActivationAtlas.ClassAtlas;
using Microsoft.ML.ActivationAtlas.Common;

namespace Microsoft.ML;

/// <summary>Catalog extensions for class activation atlases: class filters and the class-comparison axis.</summary>
public static class ClassAtlasCatalog
{
    /// <summary>
    /// The rows of a class activation atlas for class <paramref name="classIndex"/>: by rank (the class has the row's
    /// largest attribution) and/or by magnitude (the <paramref name="magnitudeCount"/> rows with the largest attribution
    /// to it), deduplicated, in input order. The output adds an Int32 column <paramref name="sourceRowColumnName"/>
    /// with each row's position in <paramref name="data"/>.
    /// </summary>
    /// <param name="catalog">The data catalog.</param>
    /// <param name="data">Rows with an attribution column.</param>
    /// <param name="attributionColumnName">Attribution column: one Single per class.</param>
    /// <param name="classIndex">The class.</param>
    /// <param name="kind">Rank, magnitude or both (default).</param>
    /// <param name="magnitudeCount">Rows kept by the magnitude filter. Default 2,000.</param>
    /// <param name="sourceRowColumnName">Added column with the original row positions. Default <c>SourceRow</c>.</param>
    /// <example>A runnable sample: <c>samples/AtlasSamples/ClassAtlasSample.cs</c> (<c>dotnet run -c Release --project samples/AtlasSamples -- class</c>).</example>
    public static IDataView FilterByClass(this DataOperationsCatalog catalog, IDataView data, string attributionColumnName, int classIndex,
        ClassFilterKind kind = ClassFilterKind.Both, int magnitudeCount = 2000, string sourceRowColumnName = "SourceRow")
    {
        ArgumentNullException.ThrowIfNull(catalog);
        ArgumentNullException.ThrowIfNull(data);
        var col = SchemaShapes.FloatVector(data.Schema, attributionColumnName, "attribution");
        var attributions = SchemaShapes.ReadFloatMatrix(data, col, out _, out int classes);
        var rows = ClassFilter.SelectRows(attributions, classes, classIndex, kind, magnitudeCount);
        return new RowSubsetDataView(data, rows, sourceRowColumnName);
    }

    /// <summary>
    /// <see cref="FilterByClass(DataOperationsCatalog, IDataView, string, int, ClassFilterKind, int, string)"/> by class
    /// name, looked up (case-insensitively) in the attribution column's slot names or <paramref name="classNames"/>.
    /// </summary>
    /// <param name="catalog">The data catalog.</param>
    /// <param name="data">Rows with an attribution column.</param>
    /// <param name="attributionColumnName">Attribution column: one Single per class.</param>
    /// <param name="className">The class name.</param>
    /// <param name="classNames">Class names in attribution order; null to read the column's slot names.</param>
    /// <param name="kind">Rank, magnitude or both (default).</param>
    /// <param name="magnitudeCount">Rows kept by the magnitude filter. Default 2,000.</param>
    /// <example>A runnable sample: <c>samples/AtlasSamples/ClassAtlasSample.cs</c> (<c>dotnet run -c Release --project samples/AtlasSamples -- class</c>).</example>
    public static IDataView FilterByClass(this DataOperationsCatalog catalog, IDataView data, string attributionColumnName, string className,
        IReadOnlyList<string>? classNames = null, ClassFilterKind kind = ClassFilterKind.Both, int magnitudeCount = 2000)
    {
        ArgumentNullException.ThrowIfNull(data);
        var col = SchemaShapes.FloatVector(data.Schema, attributionColumnName, "attribution");
        var names = classNames ?? BinningCatalog.SlotNames(col)
            ?? throw new ArgumentException($"Column '{attributionColumnName}' has no class names (slot names); pass classNames.", nameof(classNames));
        int index = -1;
        for (int i = 0; i < names.Count && index < 0; i++)
            if (string.Equals(names[i], className, StringComparison.OrdinalIgnoreCase))
                index = i;
        if (index < 0)
            throw new ArgumentException($"Unknown class '{className}'. Known classes: {string.Join(", ", names.Take(40))}{(names.Count > 40 ? ", ..." : "")}.", nameof(className));
        return FilterByClass(catalog, data, attributionColumnName, index, kind, magnitudeCount);
    }

    /// <summary>
    /// The x axis of a class comparison: the difference of the attributions to <paramref name="classA"/> and
    /// <paramref name="classB"/>, divided by its fitted 99th percentile (of the absolute difference) and clipped to
    /// [-1, 1]. Concatenate it with a 1-D t-SNE of the activations to get the comparison layout.
    /// </summary>
    /// <param name="catalog">The transforms catalog.</param>
    /// <param name="outputColumnName">Output: a Single in [-1, 1] (positive leans to <paramref name="classA"/>).</param>
    /// <param name="attributionColumnName">Attribution column: one Single per class.</param>
    /// <param name="classA">First class index.</param>
    /// <param name="classB">Second class index.</param>
    /// <param name="percentile">Percentile of |difference| that maps to 1. Default 99.</param>
    /// <example>A runnable sample: <c>samples/AtlasSamples/ClassAtlasSample.cs</c> (<c>dotnet run -c Release --project samples/AtlasSamples -- class</c>).</example>
    public static ClassDifferenceEstimator ClassDifference(this TransformsCatalog catalog, string outputColumnName, string attributionColumnName, int classA, int classB, float percentile = 99f)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        return new ClassDifferenceEstimator(CatalogContext.Of(catalog), outputColumnName, attributionColumnName, classA, classB, percentile);
    }
}
