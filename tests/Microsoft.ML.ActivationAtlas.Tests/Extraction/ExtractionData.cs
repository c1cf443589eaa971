using Microsoft.ML.ActivationAtlas.Tests.Infrastructure;
using Microsoft.ML.Data;

namespace Microsoft.ML.ActivationAtlas.Tests.Extraction;

/// <summary>Small data views for the extraction tests.</summary>
internal static class ExtractionData
{
    public sealed class ImageRow
    {
        public string ImagePath { get; set; } = "";
        public string Label { get; set; } = "";
    }

    public sealed class PixelRow
    {
        [VectorType]
        public float[] Pixels { get; set; } = [];
    }

    /// <summary>CIFAR-10 images (the first <paramref name="perClass"/> of each class), loaded and resized to 224 into column "Image".</summary>
    public static IDataView Cifar(MLContext ml, int perClass, IEnumerable<ImageRow>? extra = null)
    {
        var rows = SharedData.CifarImages(perClass).Select(p => new ImageRow { ImagePath = p.Path, Label = p.Label }).ToList();
        if (extra is not null)
            rows.AddRange(extra);
        return Images(ml, rows);
    }

    public static IDataView Images(MLContext ml, IEnumerable<ImageRow> rows)
    {
        var data = ml.Data.LoadFromEnumerable(rows);
        var load = ml.Transforms.LoadImages("Image", imageFolder: null, inputColumnName: nameof(ImageRow.ImagePath))
            .Append(ml.Transforms.ResizeImages("Image", 224, 224, "Image"));
        return load.Fit(data).Transform(data);
    }

    public static List<float[]> Column(IDataView view, string name) =>
        view.GetColumn<VBuffer<float>>(name).Select(v => v.DenseValues().ToArray()).ToList();

    public static List<int[]> Positions(IDataView view, string name = "Position") =>
        view.GetColumn<VBuffer<int>>(name).Select(v => v.DenseValues().ToArray()).ToList();

    public static double MaxRelativeError(IReadOnlyList<float[]> actual, IReadOnlyList<float[]> expected)
    {
        Assert.Equal(expected.Count, actual.Count);
        double maxRef = 0, maxDiff = 0;
        for (int i = 0; i < expected.Count; i++)
        {
            Assert.Equal(expected[i].Length, actual[i].Length);
            for (int j = 0; j < expected[i].Length; j++)
            {
                maxRef = Math.Max(maxRef, Math.Abs(expected[i][j]));
                maxDiff = Math.Max(maxDiff, Math.Abs(actual[i][j] - expected[i][j]));
            }
        }
        Assert.True(maxRef > 0, "reference is all zeros");
        return maxDiff / maxRef;
    }
}
