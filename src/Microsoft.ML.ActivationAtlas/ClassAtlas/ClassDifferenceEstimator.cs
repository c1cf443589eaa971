using Microsoft.ML.ActivationAtlas.Binning;
using Microsoft.ML.ActivationAtlas.Common;
using Microsoft.ML.Data;

namespace Microsoft.ML.ActivationAtlas.ClassAtlas;

/// <summary>
/// Fits the scale of the class-comparison axis (the 99th percentile of |attribution[a] - attribution[b]|).
/// Create it with <c>mlContext.Transforms.ClassDifference(...)</c>.
/// </summary>
public sealed class ClassDifferenceEstimator : IEstimator<ClassDifferenceTransformer>
{
    private readonly MLContext _mlContext;
    private readonly string _output;
    private readonly string _input;
    private readonly int _a;
    private readonly int _b;
    private readonly float _percentile;

    internal ClassDifferenceEstimator(MLContext mlContext, string outputColumnName, string attributionColumnName, int classA, int classB, float percentile)
    {
        if (string.IsNullOrWhiteSpace(outputColumnName))
            throw new ArgumentException("The output column name must be set.", nameof(outputColumnName));
        if (classA < 0 || classB < 0 || classA == classB)
            throw new ArgumentOutOfRangeException(nameof(classB), $"Two different, non-negative class indices are needed (got {classA} and {classB}).");
        if (!(percentile > 0 && percentile <= 100))
            throw new ArgumentOutOfRangeException(nameof(percentile), $"The percentile must be in (0, 100], not {percentile}.");
        _mlContext = mlContext;
        _output = outputColumnName;
        _input = attributionColumnName;
        _a = classA;
        _b = classB;
        _percentile = percentile;
    }

    /// <summary>Reads the attributions once and fits the scale.</summary>
    public ClassDifferenceTransformer Fit(IDataView input)
    {
        ArgumentNullException.ThrowIfNull(input);
        var col = SchemaShapes.FloatVector(input.Schema, _input, "attribution");
        var attr = SchemaShapes.ReadFloatMatrix(input, col, out int rows, out int classes);
        if (rows == 0)
            throw new InvalidOperationException($"Cannot fit the class difference: column '{_input}' has no rows.");
        if (Math.Max(_a, _b) >= classes)
            throw new ArgumentOutOfRangeException(nameof(input), $"Class {Math.Max(_a, _b)} is outside the {classes} classes of column '{_input}'.");
        var diff = new float[rows];
        for (int i = 0; i < rows; i++)
            diff[i] = MathF.Abs(attr[i * classes + _a] - attr[i * classes + _b]);
        Array.Sort(diff);
        float scale = GridNormalization.Percentile(diff, _percentile);
        return new ClassDifferenceTransformer(_output, _input, _a, _b, scale > 0 ? scale : 1f);
    }

    /// <summary>The input shape with the Single output column added.</summary>
    public SchemaShape GetOutputSchema(SchemaShape inputSchema)
    {
        SchemaShapes.RequireFloatVector(inputSchema, _input, "attribution");
        return SchemaShapes.Append(inputSchema, (_output, NumberDataViewType.Single));
    }
}
