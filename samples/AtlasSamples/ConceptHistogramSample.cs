using Microsoft.ML;
using Microsoft.ML.ActivationAtlas.Extraction;
using Microsoft.ML.ActivationAtlas.Histogram;
using Microsoft.ML.ActivationAtlas.Projection;
using Microsoft.ML.ActivationAtlas.Rendering;

namespace AtlasSamples;

/// <summary>Inspecting an unknown dataset: where do its images land on an atlas fitted on other images?</summary>
public static class ConceptHistogramSample
{
    public static void Run(string imageFolder, string output)
    {
        var ml = new MLContext(seed: 1);
        string[] vehicles = ["airplane", "automobile", "ship", "truck"];

        // Fit the atlas pipeline on the first 20 images of every class ...
        var reference = ml.Data.LoadFromEnumerable(ImageInput.FromFolder(imageFolder, perClass: 20));
        var model = ml.Transforms.LoadImages("Image", null, nameof(ImageInput.ImagePath))
            .Append(ml.Transforms.ResizeImages("Image", 224, 224))
            .Append(ml.Transforms.ExtractActivations("Activation", PretrainedModels.ResNet18, "ReLU393_Output_0"))
            .Append(ml.Transforms.ProjectToUmap("Layout", "Activation", numberOfNeighbors: 20, minDist: 0.01f, metric: DistanceMetric.Cosine))
            .Append(ml.Transforms.BinToGrid("GridCell", "Layout", 5, 10, 20))
            .Fit(reference);

        // ... then push two "unknown" datasets through the fitted pipeline: UMAP places new points among the fitted
        // ones and the grid keeps its fitted bounds, so both land in the same cells.
        var vehiclesOnly = ml.Data.LoadFromEnumerable(ImageInput.FromFolder(imageFolder, 10, c => vehicles.Contains(c)));
        var animalsOnly = ml.Data.LoadFromEnumerable(ImageInput.FromFolder(imageFolder, 10, c => !vehicles.Contains(c)));
        ConceptHistogram a = ml.Data.ConceptHistogram(model.Transform(vehiclesOnly));
        ConceptHistogram b = ml.Data.ConceptHistogram(model.Transform(animalsOnly));

        // Counts per cell, and where the two datasets differ (fractions, so sizes may differ).
        Directory.CreateDirectory(output);
        HeatmapRenderer.RenderCounts(a, 10, Path.Combine(output, "vehicles.png"), cellPixels: 32);
        HeatmapRenderer.RenderDifference(ConceptHistogram.Difference(a, b, 10), 10, Path.Combine(output, "vehicles-minus-animals.png"), cellPixels: 32);
        int busiest = a.Counts(10).ToArray().Select((n, i) => (n, i)).Max().i;
        Console.WriteLine($"{a.Total} vehicle images; the busiest 10x10 cell is ({busiest % 10}, {busiest / 10}) with {a.Counts(10)[busiest]} of them");
        Console.WriteLine($"wrote {Path.Combine(output, "vehicles.png")} and {Path.Combine(output, "vehicles-minus-animals.png")}");
    }
}
