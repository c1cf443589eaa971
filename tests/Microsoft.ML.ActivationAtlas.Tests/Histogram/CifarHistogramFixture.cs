using Microsoft.ML.ActivationAtlas.Binning;
using Microsoft.ML.ActivationAtlas.Extraction;
using Microsoft.ML.ActivationAtlas.Projection;
using Microsoft.ML.ActivationAtlas.Tests.Infrastructure;
using Microsoft.ML.Data;

namespace Microsoft.ML.ActivationAtlas.Tests.Histogram;

/// <summary>
/// 1,000 CIFAR-10 test images (100 per class) through ResNet18 to the spatial mean of <c>ReLU393_Output_0</c>, laid
/// out by UMAP and binned on 4/8/16 grids: the activations, the fitted layout and grid, and each image's cell.
/// </summary>
public sealed class CifarHistogramFixture
{
    public const int PerClass = 100;

    public CifarHistogramFixture()
    {
        Ml = new MLContext(1);
        Images = SharedData.CifarImages(PerClass).ToArray();
        // One pass of the network over the images; the layout and grid are fitted on (and applied to) the vectors.
        var images = Ml.Data.LoadFromEnumerable(Images.Select(i => new ImageRow { ImagePath = i.Path }));
        var extracted = Ml.Transforms.LoadImages("Image", null, nameof(ImageRow.ImagePath))
            .Append(Ml.Transforms.ResizeImages("Image", 224, 224, "Image"))
            .Append(Ml.Transforms.ExtractActivations(new ActivationExtractingEstimator.Options
            {
                Model = PretrainedModels.ResNet18,
                Layers = ["ReLU393_Output_0"],
                OutputColumnNames = ["Activation"],
                Sampling = ActivationSampling.SpatialMean,
            }))
            .Fit(images).Transform(images);
        Activations = extracted.GetColumn<float[]>("Activation").ToArray();
        var all = Ml.Data.LoadFromEnumerable(Activations.Select(a => new ActivationRow { Activation = a }));
        Model = Ml.Transforms.ProjectToUmap(new UmapEstimator.Options
            {
                OutputColumnName = "Layout", InputColumnName = "Activation", NumberOfNeighbors = 15, Metric = DistanceMetric.Cosine, Seed = 1,
                Deterministic = true, // the calibration tests read cells: the layout must not vary from run to run
            })
            .Append(Ml.Transforms.BinToGrid("GridCell", "Layout", 4, 8, 16))
            .Fit(all);
        var placed = Model.Transform(all);
        Layouts = placed.GetColumn<float[]>("Layout").ToArray();
        FinestCells = placed.GetColumn<int[]>("GridCell").Select(c => c[^1]).ToArray();
        Grid = ((IEnumerable<ITransformer>)Model).Last();
    }

    public MLContext Ml { get; }

    public (string Path, string Label)[] Images { get; }

    /// <summary>Each image's spatial-mean activation (512 values).</summary>
    public float[][] Activations { get; }

    /// <summary>Activation vector to grid cell: the fitted UMAP layout and 4/8/16 grids.</summary>
    public ITransformer Model { get; }

    /// <summary>Each image's place in the fitted layout.</summary>
    public float[][] Layouts { get; }

    /// <summary>The fitted 4/8/16 grids (layout to cell).</summary>
    public ITransformer Grid { get; }

    /// <summary>Each image's cell (row-major) on the 16x16 grid.</summary>
    public int[] FinestCells { get; }

    /// <summary>The images <paramref name="rows"/> on the grids: their layout (as fitted) through the fitted grid.</summary>
    public IDataView Cells(IEnumerable<int> rows)
        => Grid.Transform(Ml.Data.LoadFromEnumerable(rows.Select(r => new LayoutRow { Layout = Layouts[r] })));

    /// <summary>Counts of the images <paramref name="rows"/> on the grid of <paramref name="size"/> cells a side.</summary>
    public int[] Counts(IEnumerable<int> rows, int size)
    {
        var counts = new int[size * size];
        int ratio = 16 / size;
        foreach (int r in rows)
        {
            int c = FinestCells[r];
            counts[c / 16 / ratio * size + c % 16 / ratio]++;
        }
        return counts;
    }

    public sealed class ImageRow
    {
        public string ImagePath { get; set; } = "";
    }

    public sealed class LayoutRow
    {
        [VectorType(2)]
        public float[] Layout { get; set; } = [];
    }

    public sealed class ActivationRow
    {
        [VectorType(512)]
        public float[] Activation { get; set; } = [];
    }
}
