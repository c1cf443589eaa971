using Microsoft.ML.ActivationAtlas.Tests.Cli;
using Microsoft.ML.ActivationAtlas.Tests.Infrastructure;

namespace Microsoft.ML.ActivationAtlas.Tests.Cluster;

/// <summary>A small ResNet18 atlas of CIFAR-10 images and a second folder of unseen images to count on it.</summary>
public sealed class ShardedJobFixture : IDisposable
{
    public ShardedJobFixture()
    {
        Root = Path.Combine(Path.GetTempPath(), "atlas-shards-" + Guid.NewGuid().ToString("N"));
        string built = Copy("built", skip: 0, perClass: 8);
        Images = Copy("unseen", skip: 8, perClass: 6);
        Atlas = Path.Combine(Root, "atlas");
        var (code, err) = AtlasTool.Run("build", "--model", "resnet18", "--layer", "ReLU393_Output_0", "--images", built,
            "--out", Atlas, "--grids", "5,10", "--png-grid", "10", "--icon-size", "16", "--icons", "examples");
        Assert.True(code == 0, err);
    }

    public string Root { get; }

    public string Atlas { get; }

    /// <summary>60 CIFAR-10 images the atlas was not built on (6 of each class).</summary>
    public string Images { get; }

    public void Dispose()
    {
        if (Directory.Exists(Root))
            Directory.Delete(Root, true);
    }

    private string Copy(string name, int skip, int perClass)
    {
        string dir = Path.Combine(Root, name);
        foreach (var (path, label) in SharedData.CifarImages(skip + perClass))
        {
            if (int.Parse(Path.GetFileNameWithoutExtension(path)) < skip)
                continue;
            Directory.CreateDirectory(Path.Combine(dir, label));
            File.Copy(path, Path.Combine(dir, label, Path.GetFileName(path)));
        }
        return dir;
    }

    /// <summary>Asserts two folders hold the same files with the same bytes.</summary>
    public static void AssertSameFiles(string expected, string actual)
    {
        var a = Directory.GetFiles(expected, "*", SearchOption.AllDirectories).Select(f => Path.GetRelativePath(expected, f)).Order(StringComparer.Ordinal).ToArray();
        var b = Directory.GetFiles(actual, "*", SearchOption.AllDirectories).Select(f => Path.GetRelativePath(actual, f)).Order(StringComparer.Ordinal).ToArray();
        Assert.Equal(a, b);
        foreach (var f in a)
            Assert.True(File.ReadAllBytes(Path.Combine(expected, f)).AsSpan().SequenceEqual(File.ReadAllBytes(Path.Combine(actual, f))), $"{f} differs");
    }
}
