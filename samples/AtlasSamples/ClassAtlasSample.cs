using Google.Protobuf;
using Microsoft.ML;
using Microsoft.ML.ActivationAtlas.Attribution;
using Microsoft.ML.ActivationAtlas.Binning;
using Microsoft.ML.ActivationAtlas.ClassAtlas;
using Microsoft.ML.ActivationAtlas.Extraction;
using Microsoft.ML.ActivationAtlas.Projection;
using Microsoft.ML.ActivationAtlas.Rendering;
using Microsoft.ML.Data;

namespace AtlasSamples;

/// <summary>
/// A class activation atlas: attribute each activation to the classes of a classifier, keep the rows that matter for
/// one class, lay them out and bin them, and draw icons faded by their attribution to the class.
/// </summary>
public static class ClassAtlasSample
{
    public static void Run(string imageFolder, string output)
    {
        var ml = new MLContext(seed: 1);
        var images = ImageInput.FromFolder(imageFolder, perClass: 20);
        var data = ml.Data.LoadFromEnumerable(images);
        var resnet = PretrainedModels.ResNet18;
        const string layer = "ReLU393_Output_0";
        var load = ml.Transforms.LoadImages("Image", null, nameof(ImageInput.ImagePath)).Append(ml.Transforms.ResizeImages("Image", 224, 224));

        // 1. A classifier head for the image folder's classes: a logistic regression on the layer's spatial means,
        //    attached to ResNet18 after the layer (any ONNX classifier containing the layer would do).
        var pooled = load.Append(ml.Transforms.ExtractActivations(new ActivationExtractingEstimator.Options
        {
            Model = resnet, Layers = [layer], OutputColumnNames = ["Features"], Sampling = ActivationSampling.SpatialMean,
        })).Append(ml.Transforms.Conversion.MapValueToKey("Key", nameof(ImageInput.Label), keyOrdinality: Microsoft.ML.Transforms.ValueToKeyMappingEstimator.KeyOrdinality.ByValue));
        var features = pooled.Fit(data).Transform(data);
        var classifier = ml.MulticlassClassification.Trainers.LbfgsMaximumEntropy("Key", "Features").Fit(features);
        var classNames = images.Select(i => i.Label).Distinct().Order(StringComparer.Ordinal).ToArray();
        var withHead = ClassifierHead.Attach(resnet.Network, layer, classifier.Model, classNames);
        var headModel = ActivationModel.FromBytes(withHead.ToByteArray(), resnet.Preprocessing, resnet.PreprocessingModel?.ToByteArray());

        // 2. Activations at a random position per image and their attribution to every class at that position.
        var attributed = load
            .Append(ml.Transforms.ExtractActivations("Activation", resnet, layer))
            .Append(ml.Transforms.ComputeAttribution("Attribution", headModel, layer))
            .Fit(data).Transform(data);

        // 3. The rows of one class: those whose top attribution is the class, plus the 60 most attributed to it.
        int ship = Array.IndexOf(classNames, "ship");
        IDataView shipRows = ml.Data.FilterByClass(attributed, "Attribution", ship, ClassFilterKind.Both, magnitudeCount: 60);
        var sourceRows = shipRows.GetColumn<int>("SourceRow").ToArray();

        // 4. Lay out and bin only those rows, aggregate with their attributions, and draw the per-class view.
        var shipModel = ml.Transforms.ProjectToUmap("Layout", "Activation", numberOfNeighbors: 10, metric: DistanceMetric.Cosine)
            .Append(ml.Transforms.BinToGrid("GridCell", "Layout", 4, 8))
            .Fit(shipRows);
        GridAtlas atlas = ml.Data.AggregateAtlas(shipModel.Transform(shipRows), new AtlasAggregationOptions { AttributionColumnName = "Attribution" });
        var icons = AtlasIcons.FromNearestExamples(atlas, row => images[sourceRows[row]].ImagePath, pixels: 48);
        Directory.CreateDirectory(output);
        AtlasImageRenderer.Render(atlas, icons, Path.Combine(output, "ship-class-atlas.png"),
            new AtlasImageOptions { GridSize = 8, CellPixels = 48, ClassIndex = ship, Labels = true });
        Console.WriteLine($"{sourceRows.Length} rows kept for 'ship'; wrote {Path.Combine(output, "ship-class-atlas.png")}");

        // 5. A class comparison, as the article draws one: the attribution difference between two classes (the
        //    horizontal axis, in [-1, 1], positive towards the first) against a 1-D t-SNE of the activations.
        int automobile = Array.IndexOf(classNames, "automobile");
        var compared = ml.Transforms.ClassDifference("Difference", "Attribution", automobile, ship)
            .Append(ml.Transforms.ProjectToTsne(new TsneEstimator.Options
            {
                OutputColumnName = "Axis",
                InputColumnName = "Activation",
                NumberOfComponents = 1,
                Perplexity = 10,
                Metric = DistanceMetric.Cosine,
            }))
            .Fit(attributed).Transform(attributed);
        var difference = compared.GetColumn<float>("Difference").ToArray();
        Console.WriteLine($"automobile vs ship: {difference.Count(d => d > 0.5f)} rows lean to automobile, {difference.Count(d => d < -0.5f)} to ship");
    }
}
