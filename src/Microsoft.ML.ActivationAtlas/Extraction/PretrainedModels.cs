using Microsoft.ML.ActivationAtlas.Onnx;
using Microsoft.ML.ActivationAtlas.Onnx.Protobuf;

namespace Microsoft.ML.ActivationAtlas.Extraction;

/// <summary>
/// Networks that come with the library's packages, so no ONNX file of your own is needed.
/// </summary>
public static class PretrainedModels
{
    /// <summary>The NuGet package that ships <see cref="ResNet18"/>.</summary>
    public const string ResNet18Package = "Microsoft.ML.DnnImageFeaturizer.ResNet18";

    /// <summary>The package version whose files are looked for.</summary>
    public const string ResNet18PackageVersion = "0.23.1";

    /// <summary>
    /// The ImageNet-trained ResNet18 of the <c>Microsoft.ML.DnnImageFeaturizer.ResNet18</c> package (input 224 x 224
    /// RGB pixels 0..255, planar) with the package's preprocessing model (channel reorder to BGR and mean-image
    /// subtraction). Layers are named like <c>ReLU393_Output_0</c> (the last 7 x 7 x 512 block) and
    /// <c>Pooling395_Output_0</c> (the pooled 512 features). The files are found in the application's folder
    /// (<c>DnnImageModels/</c>, where the package copies them) or in the NuGet package cache.
    /// </summary>
    /// <exception cref="FileNotFoundException">The package files are in neither place.</exception>
    public static ActivationModel ResNet18 => ActivationModel.BuiltIn("resnet18",
        PackageFile("ResNet18Onnx", "ResNet18.onnx"), PackageFile("ResNetPrepOnnx", "ResNetPreprocess.onnx"),
        ImagePreprocessing.Identity, s_resNet18, s_resNet18Preprocessing);

    // Parsed once per process: every edit of the toolkit works on copies.
    private static readonly Lazy<ModelProto> s_resNet18 = new(() => OnnxModelIO.Load(PackageFile("ResNet18Onnx", "ResNet18.onnx")));
    private static readonly Lazy<ModelProto> s_resNet18Preprocessing = new(() => OnnxModelIO.Load(PackageFile("ResNetPrepOnnx", "ResNetPreprocess.onnx")));

    /// <summary>Resolves a built-in model by name (<c>resnet18</c>, case-insensitive), or null.</summary>
    /// <param name="name">The name.</param>
    public static ActivationModel? ByName(string name) =>
        string.Equals(name, "resnet18", StringComparison.OrdinalIgnoreCase) ? ResNet18 : null;

    private static string PackageFile(string folder, string file)
    {
        var candidates = new List<string>
        {
            Path.Combine(AppContext.BaseDirectory, "DnnImageModels", folder, file),
        };
        string? packages = Environment.GetEnvironmentVariable("NUGET_PACKAGES");
        if (string.IsNullOrEmpty(packages))
            packages = Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
        candidates.Add(Path.Combine(packages, ResNet18Package.ToLowerInvariant(), ResNet18PackageVersion, "tools", "DnnImageModels", folder, file));
        foreach (var c in candidates)
            if (File.Exists(c))
                return c;
        throw new FileNotFoundException(
            $"The {ResNet18Package} {ResNet18PackageVersion} package file {folder}/{file} was not found; looked in: {string.Join(", ", candidates)}. " +
            $"Reference the {ResNet18Package} package (it copies DnnImageModels/ to the output folder) or restore it into the NuGet cache.");
    }
}
