// A library user's program: fits a three-stage atlas pipeline (activation extraction, UMAP, grid) on a few CIFAR-10
// images, saves it, loads it back and checks that the loaded pipeline gives the same activations and cells.
//   PackTestApp <cifar10-test folder> <model.zip to write>
using Microsoft.ML;
using Microsoft.ML.ActivationAtlas.Extraction;
using Microsoft.ML.ActivationAtlas.Persistence;
using Microsoft.ML.ActivationAtlas.Projection;
using Microsoft.ML.Data;

string imageFolder = args[0], modelPath = args[1];
// The first 4 images of each class: 40 rows.
ImageRow[] rows = Directory.GetDirectories(imageFolder).Order(StringComparer.Ordinal)
    .SelectMany(d => Directory.GetFiles(d, "*.jpg").Order(StringComparer.Ordinal).Take(4))
    .Select(f => new ImageRow { ImagePath = f })
    .ToArray();
if (rows.Length < 20)
    throw new InvalidOperationException($"{imageFolder} holds {rows.Length} images in class folders; 20 or more are needed.");

var ml = new MLContext(seed: 1);
IDataView images = ml.Data.LoadFromEnumerable(rows);
var pipeline = ml.Transforms.LoadImages("Image", imageFolder: null, inputColumnName: nameof(ImageRow.ImagePath))
    .Append(ml.Transforms.ResizeImages("Image", 224, 224))
    .Append(ml.Transforms.ExtractActivations("Activation", PretrainedModels.ResNet18, "ReLU393_Output_0"))
    .Append(ml.Transforms.ProjectToUmap("Layout", "Activation", numberOfNeighbors: 10, metric: DistanceMetric.Cosine))
    .Append(ml.Transforms.BinToGrid("GridCell", "Layout", 4, 8));

ITransformer model = pipeline.Fit(images);
ml.Model.SaveAtlas(model, images.Schema, modelPath);
ITransformer loaded = ml.Model.LoadAtlas(modelPath, out _);

var fitted = Read(model.Transform(images));
var reloaded = Read(loaded.Transform(images));
if (fitted.Count != rows.Length || reloaded.Count != rows.Length)
    throw new InvalidOperationException($"expected {rows.Length} rows, got {fitted.Count} and {reloaded.Count}");
for (int i = 0; i < rows.Length; i++)
{
    if (fitted[i].Activation.Length != 512 || !fitted[i].Activation.SequenceEqual(reloaded[i].Activation))
        throw new InvalidOperationException($"row {i}: the loaded pipeline's activations differ from the fitted one's");
    if (!fitted[i].GridCell.SequenceEqual(reloaded[i].GridCell))
        throw new InvalidOperationException($"row {i}: cells [{string.Join(",", fitted[i].GridCell)}] fitted, [{string.Join(",", reloaded[i].GridCell)}] loaded");
}
int cells = fitted.Select(r => r.GridCell[0]).Distinct().Count();
Console.WriteLine($"{rows.Length} images, 512 activations each, in {cells} cells of the 4x4 grid; {modelPath}: {new FileInfo(modelPath).Length} bytes; the loaded pipeline agrees");

static List<OutputRow> Read(IDataView view) =>
    new MLContext().Data.CreateEnumerable<OutputRow>(view, reuseRowObject: false).ToList();

sealed class ImageRow
{
    public string ImagePath { get; set; } = "";
}

sealed class OutputRow
{
    [ColumnName("Activation")]
    public float[] Activation { get; set; } = [];

    [ColumnName("GridCell")]
    public int[] GridCell { get; set; } = [];
}
