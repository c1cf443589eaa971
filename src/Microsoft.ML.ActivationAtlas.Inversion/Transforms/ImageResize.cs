namespace Microsoft.ML.ActivationAtlas.Inversion.Transforms;

/// <summary>Bilinear resizing of planar images (half-pixel centres, edges clamped), the same map the renderer uses.</summary>
internal static class ImageResize
{
    /// <summary>Resizes a planar <c>[channels, height, width]</c> image into <paramref name="output"/> <c>[channels, outHeight, outWidth]</c>.</summary>
    /// <param name="input">The source planes.</param>
    /// <param name="channels">Number of planes.</param>
    /// <param name="height">Source height.</param>
    /// <param name="width">Source width.</param>
    /// <param name="output">The destination planes.</param>
    /// <param name="outHeight">Destination height.</param>
    /// <param name="outWidth">Destination width.</param>
    public static void Bilinear(ReadOnlySpan<float> input, int channels, int height, int width, Span<float> output, int outHeight, int outWidth)
    {
        if (input.Length < channels * height * width || output.Length < channels * outHeight * outWidth)
            throw new ArgumentException("The buffers are smaller than the image sizes.");
        var map = new SampledMap();
        map.SetResize(height, width, outHeight, outWidth, halfPixel: true);
        map.Forward(input, output, channels);
    }
}
