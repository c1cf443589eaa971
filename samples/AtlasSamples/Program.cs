// Each sample is one file; pick it by name:
//   dotnet run -c Release --project samples/AtlasSamples -- pipeline  [image folder]
//   dotnet run -c Release --project samples/AtlasSamples -- histogram [image folder]
//   dotnet run -c Release --project samples/AtlasSamples -- saveload  [image folder]
//   dotnet run -c Release --project samples/AtlasSamples -- class     [image folder]
//   dotnet run -c Release --project samples/AtlasSamples -- icons     [image folder]
// The image folder holds one sub-folder of images per class (default: the CIFAR-10 test images in ../shared).
using AtlasSamples;

string sample = args.Length > 0 ? args[0] : "pipeline";
string images = args.Length > 1 ? args[1] : Path.Combine("..", "shared", "datasets", "cifar10-test");
string output = Path.Combine(Path.GetTempPath(), "atlas-samples", sample);

switch (sample)
{
    case "pipeline": AtlasPipelineSample.Run(images, output); break;
    case "histogram": ConceptHistogramSample.Run(images, output); break;
    case "saveload": SaveLoadSample.Run(images, output); break;
    case "class": ClassAtlasSample.Run(images, output); break;
    case "icons": IconsSample.Run(images, output); break;
    default:
        Console.Error.WriteLine("samples: pipeline, histogram, saveload, class, icons");
        return 2;
}
return 0;
