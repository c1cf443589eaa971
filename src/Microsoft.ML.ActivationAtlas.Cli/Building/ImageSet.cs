using SkiaSharp;

namespace Microsoft.ML.ActivationAtlas.Cli.Building;

/// <summary>
/// The images of a folder (searched recursively, sorted by path): each image's label is the name of its first-level
/// sub-folder (e.g. <c>cifar10-test/ship/0001.jpg</c> is a ship), empty for images directly in the folder.
/// </summary>
internal sealed class ImageSet
{
    private static readonly string[] Extensions = [".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp"];

    private ImageSet(string root, IReadOnlyList<string> paths, IReadOnlyList<string> labels)
    {
        Root = root;
        Paths = paths;
        Labels = labels;
    }

    public string Root { get; }

    public IReadOnlyList<string> Paths { get; }

    public IReadOnlyList<string> Labels { get; }

    /// <summary>
    /// Lists the images, takes a seeded random sample of <paramref name="samples"/> of them (all when 0), and checks
    /// that each one is a readable image (its header decodes); unreadable files are an error naming them.
    /// </summary>
    public static ImageSet Scan(string folder, int samples, int seed)
    {
        string root = Path.GetFullPath(folder);
        if (!Directory.Exists(root))
            throw new DirectoryNotFoundException($"The image folder '{folder}' does not exist.");
        var all = Directory.EnumerateFiles(root, "*", SearchOption.AllDirectories)
            .Where(p => Extensions.Contains(Path.GetExtension(p).ToLowerInvariant()))
            .OrderBy(p => p, StringComparer.Ordinal)
            .ToList();
        if (all.Count == 0)
            throw new InvalidOperationException($"The image folder '{folder}' holds no images ({string.Join(", ", Extensions)}), searched recursively.");
        if (samples > all.Count)
            throw new InvalidOperationException($"--samples {samples} asks for more images than the {all.Count} in '{folder}'.");
        if (samples > 0 && samples < all.Count)
        {
            var rng = new Random(seed);
            var picked = new HashSet<int>();
            while (picked.Count < samples)
                picked.Add(rng.Next(all.Count));
            all = picked.Order().Select(i => all[i]).ToList();
        }

        var bad = new List<string>();
        foreach (var p in all)
        {
            using var codec = SKCodec.Create(p);
            if (codec is null || codec.Info.Width <= 0)
                bad.Add(Path.GetRelativePath(root, p));
        }
        if (bad.Count > 0)
            throw new InvalidDataException(
                $"{bad.Count} of {all.Count} files in '{folder}' are not readable images: {string.Join(", ", bad.Take(5))}{(bad.Count > 5 ? ", ..." : "")}. Remove or replace them.");

        var labels = all.Select(p =>
        {
            string rel = Path.GetRelativePath(root, p);
            int slash = rel.IndexOfAny(['/', '\\']);
            return slash > 0 ? rel[..slash] : "";
        }).ToArray();
        return new ImageSet(root, all, labels);
    }

    /// <summary>A stable fingerprint of the listing (paths, sizes and times), for stage caching.</summary>
    public string Fingerprint()
    {
        using var sha = System.Security.Cryptography.SHA256.Create();
        foreach (var p in Paths)
        {
            var info = new FileInfo(p);
            var bytes = System.Text.Encoding.UTF8.GetBytes($"{p}|{info.Length}|{info.LastWriteTimeUtc.Ticks}\n");
            sha.TransformBlock(bytes, 0, bytes.Length, null, 0);
        }
        sha.TransformFinalBlock([], 0, 0);
        return Convert.ToHexString(sha.Hash!)[..16];
    }
}
