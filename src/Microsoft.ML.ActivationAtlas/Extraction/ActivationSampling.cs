namespace Microsoft.ML.ActivationAtlas.Extraction;

/// <summary>Which spatial position(s) of a layer's [C, H, W] activations become output rows.</summary>
public enum ActivationSampling
{
    /// <summary>
    /// One position per image, drawn from a seeded generator (reproducible per seed and row, independent of batch
    /// size), excluding a margin on all four edges; every requested layer of an image is read at the same relative
    /// position (aligned activations). The article's choice for atlases. On a token layer the position is a patch
    /// token on the patch grid, never on its border (the margin is at least 1).
    /// </summary>
    RandomPosition,

    /// <summary>One row per spatial position: the activation grid of each image (row count = images x H x W).</summary>
    AllPositions,

    /// <summary>
    /// One row per image: the activations averaged over all positions (position reported as [-1, -1]); on a token
    /// layer, over the patch tokens (class and register tokens left out).
    /// </summary>
    SpatialMean,

    /// <summary>One row per image: the activation vector at the center position (H/2, W/2).</summary>
    Center,

    /// <summary>
    /// One row per image: the class token of a token layer (position reported as [-2, -2]). Spatial layers and
    /// layouts without a class token are rejected.
    /// </summary>
    ClassToken,
}

/// <summary>What to do with a row whose image is missing, unreadable or of the wrong size.</summary>
public enum BadRowHandling
{
    /// <summary>Throw an exception naming the row (and the image file where known). The default.</summary>
    Fail,

    /// <summary>Leave the row out of the output and count it (see <see cref="ActivationExtractingTransformer.SkippedRowCount"/>).</summary>
    Skip,
}

/// <summary>The order of color channels the network expects.</summary>
public enum ChannelOrder
{
    /// <summary>Red, green, blue.</summary>
    Rgb,

    /// <summary>Blue, green, red (Caffe and CNTK models).</summary>
    Bgr,
}
