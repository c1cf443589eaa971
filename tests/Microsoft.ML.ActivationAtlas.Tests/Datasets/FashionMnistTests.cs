using Microsoft.ML;
using Microsoft.ML.ActivationAtlas.Datasets;
using Microsoft.ML.Data;
using Microsoft.ML.Transforms.Image;

namespace Microsoft.ML.ActivationAtlas.Tests.Datasets;

public class FashionMnistTests
{
    [Fact]
    public void Splits_HaveTheDocumentedSizesAndBalancedLabels()
    {
        var train = FashionMnist.Load(FashionMnistSplit.Train);
        var test = FashionMnist.Load(FashionMnistSplit.Test);
        Assert.Equal(60000, train.Count);
        Assert.Equal(10000, test.Count);
        Assert.Equal(60000 * 784, train.Pixels.Length);
        Assert.All(Enumerable.Range(0, 10), c => Assert.Equal(6000, train.Labels.Count(l => l == c)));
        Assert.All(Enumerable.Range(0, 10), c => Assert.Equal(1000, test.Labels.Count(l => l == c)));
        Assert.Equal(0f, train.Pixels.Min());
        Assert.Equal(1f, train.Pixels.Max());
        // The first training image is an ankle boot (label 9) in the published data set.
        Assert.Equal(9, train.Labels[0]);
    }

    [Fact]
    public void DataView_HasImagesPixelsAndLabels()
    {
        var ml = new MLContext(seed: 1);
        var data = FashionMnist.Load(FashionMnistSplit.Test, maxImages: 50);
        var view = data.ToDataView(ml);
        Assert.Equal(new VectorDataViewType(NumberDataViewType.Single, 784), view.Schema["Pixels"].Type);
        Assert.Equal(TextDataViewType.Instance, view.Schema["Label"].Type);
        var imageType = Assert.IsType<ImageDataViewType>(view.Schema["Image"].Type);
        Assert.Equal((28, 28), (imageType.Height, imageType.Width));
        var rows = ml.Data.CreateEnumerable<Row>(view, reuseRowObject: false).ToList();
        Assert.Equal(50, rows.Count);
        for (int i = 0; i < 50; i++)
        {
            Assert.Equal(FashionMnist.ClassNames[data.Labels[i]], rows[i].Label);
            Assert.Equal(data.Image(i).ToArray(), rows[i].Pixels);
            var bgra = rows[i].Image.Pixels.ToArray();
            Assert.Equal(28 * 28 * 4, bgra.Length);
            for (int p = 0; p < 784; p += 29)
                Assert.Equal((byte)Math.Round(rows[i].Pixels[p] * 255f), bgra[4 * p + 1]);
        }
    }

    [Fact]
    public void MissingFolder_NamesTheFileAndThePackage()
    {
        var e = Assert.Throws<FileNotFoundException>(() => FashionMnist.Load(FashionMnistSplit.Train, "/nonexistent-folder"));
        Assert.Contains("dataset-fashion-mnist", e.Message);
        Assert.Contains("train-images-idx3-ubyte", e.Message);
    }

    [Fact]
    public void TruncatedFile_IsReportedAsTruncated()
    {
        string dir = Directory.CreateTempSubdirectory("fmnist").FullName;
        try
        {
            var bytes = new byte[] { 0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 28, 0, 0, 0, 28, 1, 2, 3 };
            File.WriteAllBytes(Path.Combine(dir, "t10k-images-idx3-ubyte"), bytes);
            File.WriteAllBytes(Path.Combine(dir, "t10k-labels-idx1-ubyte"), [0, 0, 8, 1, 0, 0, 0, 2, 1, 2]);
            var e = Assert.Throws<InvalidDataException>(() => FashionMnist.Load(FashionMnistSplit.Test, dir));
            Assert.Contains("truncated", e.Message);
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    private sealed class Row
    {
        public string Label { get; set; } = "";

        public uint LabelIndex { get; set; }

        [VectorType(784)]
        public float[] Pixels { get; set; } = [];

        [Microsoft.ML.Transforms.Image.ImageType(28, 28)]
        public MLImage Image { get; set; } = null!;
    }
}
