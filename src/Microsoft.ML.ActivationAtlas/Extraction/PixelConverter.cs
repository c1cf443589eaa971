using System.Numerics.Tensors;
using Microsoft.ML.Data;

namespace Microsoft.ML.ActivationAtlas.Extraction;

/// <summary>Converts one image (an <see cref="MLImage"/> or a planar RGB float vector, 0..255) into its slot of the input batch.</summary>
internal sealed class PixelConverter
{
    private readonly float[] _scale;
    private readonly float[] _offset;
    private readonly int[] _source;
    private readonly bool _planar;

    public PixelConverter(ImagePreprocessing preprocessing, int height, int width)
    {
        (_scale, _offset, _source) = preprocessing.Affine();
        _planar = preprocessing.Planar;
        Height = height;
        Width = width;
    }

    public int Height { get; }

    public int Width { get; }

    /// <summary>Floats per image: 3 x H x W.</summary>
    public int Length => 3 * Height * Width;

    /// <summary>Fills <paramref name="dst"/> from an image; returns an error text instead of throwing for bad images.</summary>
    public string? FromImage(MLImage? image, Span<float> dst)
    {
        if (image is null)
            return "the image is missing (empty path or failed load)";
        if (image.Width != Width || image.Height != Height)
            return $"the image is {image.Width}x{image.Height} but the network takes {Width}x{Height}; resize it first (mlContext.Transforms.ResizeImages)";
        int r, g, b;
        switch (image.PixelFormat)
        {
            case MLPixelFormat.Bgra32: b = 0; g = 1; r = 2; break;
            case MLPixelFormat.Rgba32: r = 0; g = 1; b = 2; break;
            default: return $"the image has pixel format {image.PixelFormat}; only 32-bit BGRA/RGBA images are supported";
        }
        return FromPixels(image.Pixels, r, g, b, dst);
    }

    /// <summary>Fills <paramref name="dst"/> from 32-bit BGRA pixels of an image of the network's size.</summary>
    public string? FromBgra(ReadOnlySpan<byte> px, Span<float> dst) => FromPixels(px, 2, 1, 0, dst);

    private string? FromPixels(ReadOnlySpan<byte> px, int r, int g, int b, Span<float> dst)
    {
        int hw = Height * Width;
        if (px.Length < 4 * hw)
            return $"the image has {px.Length} pixel bytes, fewer than {4 * hw}";
        Span<int> offsetOf = [r, g, b];
        int o0 = offsetOf[_source[0]], o1 = offsetOf[_source[1]], o2 = offsetOf[_source[2]];
        float a0 = _scale[0], a1 = _scale[1], a2 = _scale[2], c0 = _offset[0], c1 = _offset[1], c2 = _offset[2];
        if (_planar)
        {
            var d0 = dst[..hw];
            var d1 = dst.Slice(hw, hw);
            var d2 = dst.Slice(2 * hw, hw);
            for (int i = 0, p = 0; i < hw; i++, p += 4)
            {
                d0[i] = px[p + o0] * a0 + c0;
                d1[i] = px[p + o1] * a1 + c1;
                d2[i] = px[p + o2] * a2 + c2;
            }
        }
        else
        {
            for (int i = 0, p = 0; i < hw; i++, p += 4)
            {
                dst[3 * i] = px[p + o0] * a0 + c0;
                dst[3 * i + 1] = px[p + o1] * a1 + c1;
                dst[3 * i + 2] = px[p + o2] * a2 + c2;
            }
        }
        return null;
    }

    /// <summary>Fills <paramref name="dst"/> from planar RGB pixel values [3, H, W] (as ML.NET's ExtractPixels writes by default).</summary>
    public string? FromPlanarPixels(ReadOnlySpan<float> src, Span<float> dst)
    {
        int hw = Height * Width;
        if (src.Length != 3 * hw)
            return $"the pixel vector has {src.Length} values but the network takes 3x{Height}x{Width} = {3 * hw}";
        if (_planar)
        {
            for (int c = 0; c < 3; c++)
                {
                var d = dst.Slice(c * hw, hw);
                TensorPrimitives.Multiply(src.Slice(_source[c] * hw, hw), _scale[c], d);
                TensorPrimitives.Add(d, _offset[c], d);
            }
        }
        else
        {
            for (int i = 0; i < hw; i++)
                for (int c = 0; c < 3; c++)
                    dst[3 * i + c] = src[_source[c] * hw + i] * _scale[c] + _offset[c];
        }
        return null;
    }
}
