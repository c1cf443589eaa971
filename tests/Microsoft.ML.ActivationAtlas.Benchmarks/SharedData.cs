namespace Microsoft.ML.ActivationAtlas.Benchmarks;

/// <summary>Finds the read-only <c>shared/</c> folder that sits beside the repository.</summary>
internal static class SharedData
{
    public static string Root { get; } = Find();

    public static string Cifar10Test => Path.Combine(Root, "datasets", "cifar10-test");

    public static string GradientFixtures => Path.Combine(Root, "fixtures", "onnx-gradients");

    private static string Find()
    {
        string? env = Environment.GetEnvironmentVariable("ACTIVATION_ATLAS_SHARED");
        if (!string.IsNullOrEmpty(env))
            return env;
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            string candidate = Path.Combine(dir.FullName, "shared");
            if (File.Exists(Path.Combine(candidate, "README.md")) && Directory.Exists(Path.Combine(candidate, "datasets")))
                return candidate;
        }
        throw new DirectoryNotFoundException(
            "The shared data folder (../shared beside the repository) was not found; set ACTIVATION_ATLAS_SHARED to its path.");
    }
}
