using Microsoft.ML;
using Microsoft.ML.ActivationAtlas.Binning;
using Microsoft.ML.ActivationAtlas.Extraction;
using Microsoft.ML.ActivationAtlas.Projection;
using Microsoft.ML.ActivationAtlas.Rendering;

namespace AtlasSamples;

/// <summary>Adding atlas stages to an ordinary ML.NET image pipeline, then drawing the atlas.</summary>
public static class AtlasPipelineSample
{
    public static void Run(string imageFolder, string output)
    {
        var ml = new MLContext(seed: 1);
        var images = ImageInput.FromFolder(imageFolder, perClass: 30);
        IDataView data = ml.Data.LoadFromEnumerable(images);

        // An existing image pipeline (load, resize) ...
        var pipeline = ml.Transforms.LoadImages("Image", imageFolder: null, inputColumnName: nameof(ImageInput.ImagePath))
            .Append(ml.Transforms.ResizeImages("Image", 224, 224))
            // ... plus the atlas stages: one activation vector of ResNet18's last block per image (a random position),
            .Append(ml.Transforms.ExtractActivations("Activation", PretrainedModels.ResNet18, "ReLU393_Output_0"))
            // a 2-D UMAP layout of the activations (cosine distance, as the article),
            .Append(ml.Transforms.ProjectToUmap("Layout", "Activation", numberOfNeighbors: 20, minDist: 0.01f, metric: DistanceMetric.Cosine))
            // and the nested grids over the layout (cells of 5x5, 10x10 and 20x20).
            .Append(ml.Transforms.BinToGrid("GridCell", "Layout", 5, 10, 20));

        var model = pipeline.Fit(data);
        IDataView transformed = model.Transform(data);

        // One row per kept cell: count, mean activation and the images nearest the mean.
        GridAtlas atlas = ml.Data.AggregateAtlas(transformed, new AtlasAggregationOptions { ActivationColumnName = "Activation" });
        Console.WriteLine($"{atlas.RowCount} images in {string.Join(", ", atlas.Levels.Select(l => $"{l.Cells.Count} cells of the {l.GridSize}x{l.GridSize} grid"))}");

        // Icons: here each cell's nearest image (feature inversion, mlContext.Transforms.InvertFeatures, gives the
        // article's icons of the mean activation instead).
        var icons = AtlasIcons.FromNearestExamples(atlas, row => images[row].ImagePath, pixels: 48);
        Directory.CreateDirectory(output);
        AtlasImageRenderer.Render(atlas, icons, Path.Combine(output, "atlas.png"), new AtlasImageOptions { GridSize = 10, CellPixels = 48 });
        AtlasViewerWriter.Write(atlas, icons, Path.Combine(output, "viewer"), new AtlasViewerOptions
        {
            ModelName = "ResNet18",
            LayerName = "ReLU393_Output_0",
            ImagePathOfRow = row => images[row].ImagePath,
        }, overwrite: true);
        Console.WriteLine($"wrote {Path.Combine(output, "atlas.png")} and {Path.Combine(output, "viewer", "index.html")}");
    }
}
