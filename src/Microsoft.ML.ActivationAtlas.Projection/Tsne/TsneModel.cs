using Microsoft.ML.ActivationAtlas.Projection.Internal;
using Microsoft.ML.ActivationAtlas.Projection.Knn;

namespace Microsoft.ML.ActivationAtlas.Projection.Tsne;

/// <summary>A fitted t-SNE layout of the training rows.</summary>
public sealed class TsneModel
{
    /// <summary>Neighbours used by <see cref="Place"/>.</summary>
    public const int PlacementNeighbors = 5;

    private PreparedData? _prepared;

    /// <summary>Rebuilds a model from its parts (for example when loading a saved model).</summary>
    /// <param name="options">The options it was fitted with.</param>
    /// <param name="trainingData">Row-major training rows.</param>
    /// <param name="rows">Number of training rows.</param>
    /// <param name="dims">Input dimension.</param>
    /// <param name="embedding">Row-major layout, rows x <see cref="TsneOptions.Components"/>.</param>
    public TsneModel(TsneOptions options, float[] trainingData, int rows, int dims, float[] embedding)
    {
        ArgumentNullException.ThrowIfNull(options);
        PreparedData.Validate(trainingData, rows, dims, "t-SNE training data");
        if (embedding.Length != (long)rows * options.Components)
            throw new ArgumentException("The embedding must hold rows x components values.", nameof(embedding));
        Options = options;
        TrainingData = trainingData;
        Rows = rows;
        InputDimension = dims;
        Embedding = embedding;
    }

    /// <summary>The options it was fitted with.</summary>
    public TsneOptions Options { get; }

    /// <summary>The training rows.</summary>
    public float[] TrainingData { get; }

    /// <summary>Number of training rows.</summary>
    public int Rows { get; }

    /// <summary>Input dimension.</summary>
    public int InputDimension { get; }

    /// <summary>Output dimension (1 or 2).</summary>
    public int OutputDimension => Options.Components;

    /// <summary>The layout, row-major <see cref="Rows"/> x <see cref="OutputDimension"/>.</summary>
    public float[] Embedding { get; }

    /// <summary>
    /// Positions for rows that may not have been in the training set. t-SNE has no out-of-sample mapping, so a row
    /// equal to a training row gets that row's position, and any other row the inverse-distance-weighted mean of the
    /// positions of its <see cref="PlacementNeighbors"/> nearest training rows (exact search). This is an
    /// interpolation, not a t-SNE optimisation.
    /// </summary>
    /// <param name="data">Row-major rows, <paramref name="rows"/> x <see cref="InputDimension"/>.</param>
    /// <param name="rows">Number of rows.</param>
    /// <param name="cancellationToken">Cancels the search.</param>
    public float[] Place(float[] data, int rows, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(data);
        if (data.Length != (long)rows * InputDimension)
            throw new ArgumentException($"t-SNE placement: the model was fitted on {InputDimension}-dimensional rows, but {data.Length} values for {rows} rows were given.", nameof(data));
        if (rows == 0)
            return [];
        _prepared ??= new PreparedData(TrainingData, Rows, InputDimension, Options.Metric, "t-SNE training data");
        var queries = _prepared.PrepareQueries(data, rows, "t-SNE placement data");
        int k = Math.Min(PlacementNeighbors, Rows);
        var knn = ExactKnn.Query(_prepared, queries, rows, k, cancellationToken);
        int dim = OutputDimension;
        var result = new float[rows * dim];
        for (int i = 0; i < rows; i++)
        {
            if (knn.Distances[i * k] <= 0f)
            {
                Array.Copy(Embedding, knn.Indices[i * k] * dim, result, i * dim, dim);
                continue;
            }
            double total = 0;
            for (int t = 0; t < k; t++)
            {
                double w = 1.0 / knn.Distances[i * k + t];
                total += w;
                for (int d = 0; d < dim; d++)
                    result[i * dim + d] += (float)(w * Embedding[knn.Indices[i * k + t] * dim + d]);
            }
            for (int d = 0; d < dim; d++)
                result[i * dim + d] = (float)(result[i * dim + d] / total);
        }
        return result;
    }
}
