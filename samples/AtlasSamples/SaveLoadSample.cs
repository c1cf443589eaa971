using Microsoft.ML;
using Microsoft.ML.ActivationAtlas.Extraction;
using Microsoft.ML.ActivationAtlas.Persistence;
using Microsoft.ML.ActivationAtlas.Projection;
using Microsoft.ML.Data;

namespace AtlasSamples;

/// <summary>Saving a trained atlas pipeline and loading it again (in this or another process).</summary>
public static class SaveLoadSample
{
    public static void Run(string imageFolder, string output)
    {
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(ImageInput.FromFolder(imageFolder, perClass: 10));
        var model = ml.Transforms.LoadImages("Image", null, nameof(ImageInput.ImagePath))
            .Append(ml.Transforms.ResizeImages("Image", 224, 224))
            .Append(ml.Transforms.ExtractActivations("Activation", PretrainedModels.ResNet18, "ReLU393_Output_0"))
            .Append(ml.Transforms.ProjectToUmap("Layout", "Activation", numberOfNeighbors: 15, metric: DistanceMetric.Cosine))
            .Append(ml.Transforms.BinToGrid("GridCell", "Layout", 10, 20))
            .Fit(data);

        // mlContext.Model.Save cannot write the atlas stages (ML.NET keeps its saving API internal); SaveAtlas writes
        // an ordinary ML.NET model zip plus each atlas stage's state, in one file.
        Directory.CreateDirectory(output);
        string path = Path.Combine(output, "atlas-model.zip");
        ml.Model.SaveAtlas(model, data.Schema, path);

        // Loading needs only the file: a fresh MLContext (or process) gets the same cells for the same rows.
        var fresh = new MLContext();
        ITransformer loaded = fresh.Model.LoadAtlas(path, out DataViewSchema inputSchema);
        var before = model.Transform(data).GetColumn<int[]>("GridCell").ToArray();
        var after = loaded.Transform(data).GetColumn<int[]>("GridCell").ToArray();
        int same = before.Zip(after).Count(p => p.First.SequenceEqual(p.Second));
        Console.WriteLine($"saved {new FileInfo(path).Length / 1e6:F1} MB; input columns: {string.Join(", ", inputSchema.Select(c => c.Name))}");
        Console.WriteLine($"{same} of {before.Length} rows are in the same cells after loading");
    }
}
