namespace Microsoft.ML.ActivationAtlas.Tests.Infrastructure;

/// <summary>
/// The read-only <c>shared/</c> folder beside the repository: CIFAR-10 test images and gradient fixtures.
/// Tests that need it fail (they never skip) when it is missing.
/// </summary>
internal static class SharedData
{
    private static readonly Lazy<string> s_root = new(Find);

    public static string Root => s_root.Value;

    /// <summary>CIFAR-10 test split: 10 class folders of 1,000 32x32 JPEGs each.</summary>
    public static string Cifar10Test => Path.Combine(Root, "datasets", "cifar10-test");

    /// <summary>Gradient-conformance fixtures, one folder per model.</summary>
    public static string GradientFixtures => Path.Combine(Root, "fixtures", "onnx-gradients");

    /// <summary>The ResNet18 package's network (copied to the test output by the package, else from the NuGet cache).</summary>
    public static string ResNet18ModelPath => PackageFile("ResNet18Onnx", "ResNet18.onnx");

    /// <summary>The ResNet18 package's preprocessing model.</summary>
    public static string ResNet18PreprocessPath => PackageFile("ResNetPrepOnnx", "ResNetPreprocess.onnx");

    /// <summary>The fixture model names.</summary>
    public static IReadOnlyList<string> FixtureModels { get; } =
        ["googlenet", "squeezenet1_1", "mobilenet_v2", "shufflenet_v2_x0_5", "lrn_inception_stem"];

    /// <summary>The first <paramref name="perClass"/> image paths of every CIFAR-10 class, with their labels.</summary>
    public static IReadOnlyList<(string Path, string Label)> CifarImages(int perClass)
    {
        var list = new List<(string, string)>();
        foreach (var dir in Directory.GetDirectories(Cifar10Test).OrderBy(d => d, StringComparer.Ordinal))
        {
            string label = System.IO.Path.GetFileName(dir);
            foreach (var file in Directory.GetFiles(dir, "*.jpg").OrderBy(f => f, StringComparer.Ordinal).Take(perClass))
                list.Add((file, label));
        }
        return list;
    }

    private static string PackageFile(string folder, string file)
    {
        string local = System.IO.Path.Combine(AppContext.BaseDirectory, "DnnImageModels", folder, file);
        if (File.Exists(local))
            return local;
        string home = Environment.GetEnvironmentVariable("NUGET_PACKAGES")
            ?? System.IO.Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
        string cached = System.IO.Path.Combine(home, "microsoft.ml.dnnimagefeaturizer.resnet18", "0.23.1", "tools", "DnnImageModels", folder, file);
        if (File.Exists(cached))
            return cached;
        throw new FileNotFoundException($"The ResNet18 package file {folder}/{file} was found neither in the test output nor in the NuGet cache.");
    }

    private static string Find()
    {
        string? env = Environment.GetEnvironmentVariable("ACTIVATION_ATLAS_SHARED");
        if (!string.IsNullOrEmpty(env))
            return env;
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            string candidate = System.IO.Path.Combine(dir.FullName, "shared");
            if (File.Exists(System.IO.Path.Combine(candidate, "README.md")) && Directory.Exists(System.IO.Path.Combine(candidate, "datasets")))
                return candidate;
        }
        throw new DirectoryNotFoundException(
            "The shared data folder (../shared beside the repository) was not found; set ACTIVATION_ATLAS_SHARED to its path.");
    }
}
