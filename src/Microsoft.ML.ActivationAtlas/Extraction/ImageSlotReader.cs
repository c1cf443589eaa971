using Microsoft.ML.Data;
using Microsoft.ML.Transforms.Image;

namespace Microsoft.ML.ActivationAtlas.Extraction;

/// <summary>Reads the current row's image (or pixel vector) into a batch slot; reports bad images as text, never throws for them.</summary>
internal sealed class ImageSlotReader
{
    private readonly PixelConverter _converter;
    private readonly ValueGetter<MLImage>? _image;
    private readonly ValueGetter<VBuffer<float>>? _pixels;
    private readonly ValueGetter<ReadOnlyMemory<char>>? _path;
    private readonly bool _pathInput;
    private readonly bool _disposeImages;
    private VBuffer<float> _pixelBuffer;

    public ImageSlotReader(ActivationExtractingTransformer t, DataViewRow row, bool imagePassedThrough)
    {
        _converter = t.Engine.Converter;
        var col = t.InputColumn(row.Schema);
        ColumnName = col.Name;
        if (col.Type is ImageDataViewType)
            _image = row.GetGetter<MLImage>(col);
        else if (col.Type is TextDataViewType)
            _pathInput = true;
        else
            _pixels = row.GetGetter<VBuffer<float>>(col);
        var pathCol = _pathInput ? col : t.PathColumn(row.Schema);
        if (pathCol is { } p)
            _path = row.GetGetter<ReadOnlyMemory<char>>(p);
        _disposeImages = !imagePassedThrough;
    }

    public string ColumnName { get; }

    /// <summary>Whether the input column holds image file paths (decoded here, possibly in parallel via <see cref="Decode"/>).</summary>
    public bool IsPathInput => _pathInput;

    /// <summary>Decodes an image file into a slot (thread-safe); returns null or why it could not.</summary>
    public string? Decode(string path, Span<float> slot)
    {
        try
        {
            return ImageFileDecoder.Decode(path, _converter, slot);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException)
        {
            return $"image file '{path}' could not be read: {e.Message}";
        }
    }

    /// <summary>The input columns this reader needs active.</summary>
    public static IEnumerable<DataViewSchema.Column> Dependencies(ActivationExtractingTransformer t, DataViewSchema schema)
    {
        var input = t.InputColumn(schema);
        yield return input;
        if (input.Type is not TextDataViewType && t.PathColumn(schema) is { } p)
            yield return p;
    }

    /// <summary>Converts the current row's image into <paramref name="slot"/>; returns null or the reason it could not.</summary>
    public string? Read(Span<float> slot, out Exception? error)
    {
        error = null;
        if (_pathInput)
            return Decode(CurrentPath()!, slot);
        try
        {
            if (_image is not null)
            {
                MLImage image = null!;
                _image(ref image);
                try
                {
                    return _converter.FromImage(image, slot);
                }
                finally
                {
                    if (_disposeImages)
                        image?.Dispose();
                }
            }
            _pixels!(ref _pixelBuffer);
            if (!_pixelBuffer.IsDense)
            {
                var dense = new float[_pixelBuffer.Length];
                _pixelBuffer.CopyTo(dense);
                return _converter.FromPlanarPixels(dense, slot);
            }
            return _converter.FromPlanarPixels(_pixelBuffer.GetValues(), slot);
        }
        catch (Exception e) when (e is IOException or ArgumentException or InvalidOperationException or UnauthorizedAccessException or NotSupportedException or FormatException)
        {
            error = e;
            return e.Message;
        }
    }

    /// <summary>The current row's image path, when a path column is known.</summary>
    public string? CurrentPath()
    {
        if (_path is null)
            return null;
        ReadOnlyMemory<char> v = default;
        _path(ref v);
        return v.ToString();
    }

    public Exception Failure(long row, string reason, Exception? inner, string? path)
    {
        string where = path is null ? $"Row {row} of column '{ColumnName}'" : $"Row {row} (image '{path}') of column '{ColumnName}'";
        return new InvalidOperationException($"{where}: {reason}. Set BadRows = Skip to leave such rows out.", inner);
    }
}
