using Microsoft.ML;
using Microsoft.ML.ActivationAtlas.Binning;
using Microsoft.ML.ActivationAtlas.Extraction;
using Microsoft.ML.ActivationAtlas.Inversion;
using Microsoft.ML.ActivationAtlas.Inversion.Objectives;
using Microsoft.ML.ActivationAtlas.Inversion.Transforms;
using Microsoft.ML.ActivationAtlas.Projection;
using Microsoft.ML.Data;

namespace AtlasSamples;

/// <summary>
/// Feature visualisation, the atlas's icons: the cells' mean activations of a small atlas inverted coarse to fine (a
/// finer cell starts from its parent's icon), one channel visualised, a direction rendered with a transform and an
/// objective of your own, and one image's activation grid.
/// </summary>
public static class IconsSample
{
    /// <summary>A transformation-robustness step of your own: a mirror image for half of the steps.</summary>
    private sealed class RandomFlip : SamplingTransform
    {
        protected override (int Height, int Width) Sample(Random random, int height, int width, SamplePositions positions)
        {
            bool flip = random.Next(2) == 1;
            var p = positions.Resize(height, width);
            for (int y = 0; y < height; y++)
                for (int x = 0; x < width; x++)
                    (p[2 * (y * width + x)], p[2 * (y * width + x) + 1]) = (y, flip ? width - 1 - x : x);
            return (height, width);
        }
    }

    public static void Run(string imageFolder, string output)
    {
        var ml = new MLContext(seed: 1);
        var images = ImageInput.FromFolder(imageFolder, perClass: 10);
        var data = ml.Data.LoadFromEnumerable(images);
        const string layer = "ReLU393_Output_0";

        // 1. A small atlas: activations, UMAP, a 3x3 grid nested in a 6x6 one, the cells' mean activations.
        var atlasModel = ml.Transforms.ExtractActivations(new ActivationExtractingEstimator.Options
            {
                Model = PretrainedModels.ResNet18, Layers = [layer], InputColumnName = nameof(ImageInput.ImagePath),
            })
            .Append(ml.Transforms.ProjectToUmap(new UmapEstimator.Options { NumberOfNeighbors = 10, Metric = DistanceMetric.Cosine }))
            .Append(ml.Transforms.BinToGrid(new BinToGridEstimator.Options { GridSizes = [3, 6] }))
            .Fit(data);
        GridAtlas atlas = ml.Data.AggregateAtlas(atlasModel.Transform(data));

        // 2. One renderer (network and gradient graphs built once) for every grid: the coarse cells cold, each fine
        //    cell warm-started from its parent's optimised parameters (a quarter of the steps).
        using var renderer = ml.Transforms.CreateIconRenderer(new FeatureInversionEstimator.Options
        {
            Model = PretrainedModels.ResNet18,
            Layer = layer,
            Steps = 64,
        });
        var coarse = atlas.Level(3).Cells;
        var coarseIcons = renderer.Render(coarse.Select(c => c.MeanActivation.ToArray()).ToList());
        var fine = atlas.Level(6).Cells;
        var warm = fine.Select(c =>
        {
            int parent = coarse.ToList().FindIndex(p => p.X == c.X / 2 && p.Y == c.Y / 2);
            return parent < 0 ? null : coarseIcons[parent].Parameters;
        }).ToList();
        var fineIcons = renderer.Render(fine.Select(c => c.MeanActivation.ToArray()).ToList(), warm);
        Console.WriteLine($"3x3 grid: {coarseIcons.Count} icons, median fidelity {Median(coarseIcons.Select(i => i.Fidelity)):0.00}; " +
            $"6x6 grid, warm-started: {fineIcons.Count} icons, median fidelity {Median(fineIcons.Select(i => i.Fidelity)):0.00}");

        // The same as an ML.NET stage over the atlas's cells (one row per cell of every grid): Icon and IconFidelity columns.
        var cells = atlas.ToDataView();
        var inverted = ml.Transforms.InvertFeatures(new FeatureInversionEstimator.Options
        {
            Model = PretrainedModels.ResNet18,
            Layer = layer,
            InputColumnName = "MeanActivation",
            Steps = 32,
        }).Fit(cells).Transform(cells);
        Console.WriteLine($"InvertFeatures over {cells.GetColumn<int>("GridSize").Count()} cells: median fidelity " +
            $"{Median(inverted.GetColumn<float>("IconFidelity").Select(f => (double)f)):0.00} after 32 steps each");

        // 3. One channel (lucid's channel objective), and a cell's direction with composed parts of your own: the
        //    standard transforms plus a random flip, the atlas objective plus half the plain direction (lucid's sum).
        var settings = new FeatureInversionEstimator.Options { Model = PretrainedModels.ResNet18, Layer = layer, Steps = 64 };
        FeatureIcon channel = ml.Transforms.VisualizeChannel(settings, channel: 7);
        settings.CustomTransforms = [.. RobustnessTransforms.LucidStandard(settings.Size), new RandomFlip()];
        settings.CustomObjective = IconObjective.Atlas() + 0.5 * IconObjective.Direction;
        FeatureIcon custom = ml.Transforms.VisualizeDirection(settings, coarse[0].MeanActivation.ToArray());
        Console.WriteLine($"channel 7: fidelity {channel.Fidelity:0.00}; cell (0) with custom parts: fidelity {custom.Fidelity:0.00}");

        // 4. One image as the network sees it: an icon per position of the layer's 7x7 grid, written as PNG and HTML.
        string gridFolder = Path.Combine(output, "grid");
        if (Directory.Exists(gridFolder))
            Directory.Delete(gridFolder, recursive: true);
        ml.Transforms.WriteActivationGrid(images[0].ImagePath, gridFolder, new ActivationGridOptions
        {
            Model = PretrainedModels.ResNet18,
            Layer = layer,
            IconSteps = 32,
        });
        Console.WriteLine($"activation grid of {images[0].ImagePath}: {Path.Combine(gridFolder, "index.html")}");
    }

    private static double Median(IEnumerable<double> values)
    {
        var v = values.Order().ToArray();
        return v.Length == 0 ? double.NaN : (v[(v.Length - 1) / 2] + v[v.Length / 2]) / 2;
    }
}
