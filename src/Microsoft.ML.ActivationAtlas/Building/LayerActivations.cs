using System.Runtime.InteropServices;
using System.Security.Cryptography;
using Microsoft.ML.ActivationAtlas.Datasets;
using Microsoft.ML.ActivationAtlas.Extraction;

namespace Microsoft.ML.ActivationAtlas.Building;

/// <summary>
/// Activations of one layer extracted beforehand, one row per image, for
/// <see cref="AtlasBuilder.Build(ImageFolder, LayerActivations, string, AtlasBuildOptions, IProgress{AtlasBuildProgress}?, CancellationToken)"/>
/// (e.g. one layer of a <see cref="LinkedAtlas"/>'s single network pass).
/// </summary>
public sealed class LayerActivations
{
    /// <summary>Wraps the rows of a layer (the arrays are used as they are, not copied).</summary>
    /// <param name="layer">The layer's tensor name, as <see cref="AtlasBuildOptions.Layer"/> names it.</param>
    /// <param name="dimension">Values per row: the layer's channels.</param>
    /// <param name="activations">Rows x <paramref name="dimension"/> values, row-major: each image's vector.</param>
    /// <param name="spatialMeans">The same shape: each image's mean over the layer's positions, which a trained head learns from; null when not needed.</param>
    public LayerActivations(string layer, int dimension, float[] activations, float[]? spatialMeans = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(layer);
        ArgumentNullException.ThrowIfNull(activations);
        ArgumentOutOfRangeException.ThrowIfLessThan(dimension, 1);
        if (activations.Length % dimension != 0)
            throw new ArgumentException($"{activations.Length} activation values are not whole rows of {dimension} (layer '{layer}').", nameof(activations));
        if (spatialMeans is not null && spatialMeans.Length != activations.Length)
            throw new ArgumentException($"{spatialMeans.Length} spatial-mean values for {activations.Length} activation values (layer '{layer}').", nameof(spatialMeans));
        Layer = layer;
        Dimension = dimension;
        Activations = activations;
        SpatialMeans = spatialMeans;
    }

    /// <summary>The layer.</summary>
    public string Layer { get; }

    /// <summary>Values per row.</summary>
    public int Dimension { get; }

    /// <summary>The number of rows.</summary>
    public int RowCount => Activations.Length / Dimension;

    /// <summary>Each image's vector, row-major.</summary>
    public float[] Activations { get; }

    /// <summary>Each image's spatial mean, or null.</summary>
    public float[]? SpatialMeans { get; }

    /// <summary>A digest of the values, so that stored stages of other rows are never reused for these.</summary>
    internal string Fingerprint => _fingerprint ??= Convert.ToHexString(SHA256.HashData(MemoryMarshal.AsBytes(Activations.AsSpan())))[..16];

    private string? _fingerprint;

    /// <summary>Checks the rows against the images and the build's settings; errors name the option at fault.</summary>
    internal void CheckFor(ImageFolder images, AtlasBuildOptions o)
    {
        if (RowCount != images.Paths.Count)
            throw new ArgumentException($"The given activations of layer '{Layer}' have {RowCount} rows for {images.Paths.Count} images.", nameof(LayerActivations));
        if (!string.Equals(o.Layer, Layer, StringComparison.Ordinal))
            throw new ArgumentException($"AtlasBuildOptions.Layer is '{o.Layer}' but the given activations are of layer '{Layer}'.", nameof(AtlasBuildOptions.Layer));
        if (o.Head == AtlasHeadKind.Model)
            throw new ArgumentException("AtlasBuildOptions.Head: an ONNX classifier's attributions come from the network pass; with given activations use None or Train.", nameof(AtlasBuildOptions.Head));
        if (o.Head == AtlasHeadKind.Train && o.Sampling == ActivationSampling.RandomPosition && SpatialMeans is null)
            throw new ArgumentException($"AtlasBuildOptions.Head = Train needs the spatial means of layer '{Layer}' with the given activations.", nameof(SpatialMeans));
    }
}
