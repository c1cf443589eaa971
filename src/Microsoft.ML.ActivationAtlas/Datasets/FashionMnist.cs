using Microsoft.ML.Data;
using Microsoft.ML.Transforms.Image;

namespace Microsoft.ML.ActivationAtlas.Datasets;

/// <summary>Which part of Fashion-MNIST to read.</summary>
public enum FashionMnistSplit
{
    /// <summary>The 60,000 training images.</summary>
    Train = 0,

    /// <summary>The 10,000 test images.</summary>
    Test = 1,
}

/// <summary>
/// Fashion-MNIST (Xiao, Rasul and Vollgraf 2017): 28x28 grey images of 10 clothing classes, read from the four IDX
/// files (Debian package <c>dataset-fashion-mnist</c> installs them in <see cref="DefaultDirectory"/>).
/// </summary>
public sealed class FashionMnist
{
    /// <summary>Image width and height in pixels.</summary>
    public const int Side = 28;

    /// <summary>Pixels per image.</summary>
    public const int PixelCount = Side * Side;

    /// <summary>Where the Debian package puts the files; the <c>FASHION_MNIST_DIR</c> environment variable overrides it.</summary>
    public static string DefaultDirectory =>
        Environment.GetEnvironmentVariable("FASHION_MNIST_DIR") is { Length: > 0 } dir ? dir : "/usr/share/datasets/fashion-mnist";

    /// <summary>The class names, by label index.</summary>
    public static IReadOnlyList<string> ClassNames { get; } =
        ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"];

    private FashionMnist(float[] pixels, byte[] labels)
    {
        Pixels = pixels;
        Labels = labels;
    }

    /// <summary>Row-major pixels in [0, 1] (value / 255), <see cref="Count"/> x <see cref="PixelCount"/>.</summary>
    public float[] Pixels { get; }

    /// <summary>Class index (0-9) of each image.</summary>
    public byte[] Labels { get; }

    /// <summary>Number of images.</summary>
    public int Count => Labels.Length;

    /// <summary>Reads one split.</summary>
    /// <param name="split">Train or test.</param>
    /// <param name="directory">Folder of the IDX files (<see cref="DefaultDirectory"/> when null).</param>
    /// <param name="maxImages">Reads only the first this many images when set.</param>
    public static FashionMnist Load(FashionMnistSplit split, string? directory = null, int? maxImages = null)
    {
        directory ??= DefaultDirectory;
        string prefix = split == FashionMnistSplit.Train ? "train" : "t10k";
        string images = Find(directory, prefix + "-images-idx3-ubyte");
        string labels = Find(directory, prefix + "-labels-idx1-ubyte");
        var (ishape, ibytes) = IdxFile.ReadBytes(images);
        var (lshape, lbytes) = IdxFile.ReadBytes(labels);
        if (ishape.Length != 3 || ishape[1] != Side || ishape[2] != Side)
            throw new InvalidDataException($"{images}: expected [count, 28, 28] images, found [{string.Join(", ", ishape)}].");
        if (lshape.Length != 1 || lshape[0] != ishape[0])
            throw new InvalidDataException($"{labels}: expected {ishape[0]} labels to match {images}, found [{string.Join(", ", lshape)}].");
        foreach (byte l in lbytes)
        {
            if (l >= ClassNames.Count)
                throw new InvalidDataException($"{labels}: label {l} is outside 0-9.");
        }
        int count = Math.Min(ishape[0], maxImages ?? int.MaxValue);
        var pixels = new float[count * PixelCount];
        System.Numerics.Tensors.TensorPrimitives.ConvertChecked<byte, float>(ibytes.AsSpan(0, pixels.Length), pixels);
        System.Numerics.Tensors.TensorPrimitives.Multiply(pixels, 1f / 255f, pixels);
        return new FashionMnist(pixels, lbytes.AsSpan(0, count).ToArray());
    }

    /// <summary>Reads the 70,000 images: the training split followed by the test split.</summary>
    /// <param name="directory">Folder of the IDX files (<see cref="DefaultDirectory"/> when null).</param>
    public static FashionMnist LoadAll(string? directory = null)
    {
        var train = Load(FashionMnistSplit.Train, directory);
        var test = Load(FashionMnistSplit.Test, directory);
        return new FashionMnist([.. train.Pixels, .. test.Pixels], [.. train.Labels, .. test.Labels]);
    }

    /// <summary>The pixels of image <paramref name="index"/>.</summary>
    /// <param name="index">Image index.</param>
    public ReadOnlySpan<float> Image(int index) => Pixels.AsSpan(index * PixelCount, PixelCount);

    /// <summary>
    /// The images as an <see cref="IDataView"/> with columns <c>Label</c> (class name, text), <c>LabelIndex</c>
    /// (class index, <see cref="uint"/>), <c>Pixels</c> (784 floats in [0, 1], row-major) and, when
    /// <paramref name="includeImages"/>, <c>Image</c> (a 28x28 <see cref="MLImage"/>, grey replicated to BGRA).
    /// </summary>
    /// <param name="mlContext">The ML.NET context.</param>
    /// <param name="includeImages">Also build the image column.</param>
    public IDataView ToDataView(MLContext mlContext, bool includeImages = true)
    {
        ArgumentNullException.ThrowIfNull(mlContext);
        if (includeImages)
            return mlContext.Data.LoadFromEnumerable(Rows(true).Select(r => new ImageRow { Label = r.Label, LabelIndex = r.LabelIndex, Pixels = r.Pixels, Image = r.Image! }));
        return mlContext.Data.LoadFromEnumerable(Rows(false).Select(r => new PixelRow { Label = r.Label, LabelIndex = r.LabelIndex, Pixels = r.Pixels }));
    }

    private IEnumerable<(string Label, uint LabelIndex, float[] Pixels, MLImage? Image)> Rows(bool images)
    {
        for (int i = 0; i < Count; i++)
        {
            var px = Image(i).ToArray();
            MLImage? image = null;
            if (images)
            {
                var bgra = new byte[PixelCount * 4];
                for (int p = 0; p < PixelCount; p++)
                {
                    byte g = (byte)Math.Round(px[p] * 255f);
                    bgra[4 * p] = g;
                    bgra[4 * p + 1] = g;
                    bgra[4 * p + 2] = g;
                    bgra[4 * p + 3] = 255;
                }
                image = MLImage.CreateFromPixels(Side, Side, MLPixelFormat.Bgra32, bgra);
            }
            yield return (ClassNames[Labels[i]], Labels[i], px, image);
        }
    }

    private static string Find(string directory, string stem)
    {
        foreach (string candidate in new[] { stem + ".gz", stem, stem.Replace("-idx", ".idx", StringComparison.Ordinal) })
        {
            string path = Path.Combine(directory, candidate);
            if (File.Exists(path))
                return path;
        }
        throw new FileNotFoundException(
            $"Fashion-MNIST file '{stem}.gz' was not found in '{directory}'. Install it with 'apt-get install dataset-fashion-mnist' or set FASHION_MNIST_DIR.",
            Path.Combine(directory, stem + ".gz"));
    }

    private sealed class PixelRow
    {
        public string Label { get; set; } = "";

        public uint LabelIndex { get; set; }

        [VectorType(PixelCount)]
        public float[] Pixels { get; set; } = [];
    }

    private sealed class ImageRow
    {
        public string Label { get; set; } = "";

        public uint LabelIndex { get; set; }

        [VectorType(PixelCount)]
        public float[] Pixels { get; set; } = [];

        [ImageType(Side, Side)]
        public MLImage Image { get; set; } = null!;
    }
}
