using SkiaSharp;

namespace Microsoft.ML.ActivationAtlas.Datasets;

/// <summary>
/// The images of a folder (searched recursively, sorted by path): each image's label is the name of its first-level
/// sub-folder (e.g. <c>cifar10-test/ship/0001.jpg</c> is a ship), empty for images directly in the folder.
/// </summary>
public sealed class ImageFolder
{
    /// <summary>The file extensions taken as images (case-insensitive).</summary>
    public static IReadOnlyList<string> Extensions { get; } = [".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp"];

    private ImageFolder(string root, IReadOnlyList<string> paths, IReadOnlyList<string> labels, IReadOnlyList<string> unreadable)
    {
        Root = root;
        Paths = paths;
        Labels = labels;
        Unreadable = unreadable;
    }

    /// <summary>The folder's full path.</summary>
    public string Root { get; }

    /// <summary>The images' full paths, in order.</summary>
    public IReadOnlyList<string> Paths { get; }

    /// <summary>Each image's label (its first-level sub-folder's name, or empty).</summary>
    public IReadOnlyList<string> Labels { get; }

    /// <summary>Files left out because they are not readable images (paths relative to <see cref="Root"/>); empty unless skipping was asked for.</summary>
    public IReadOnlyList<string> Unreadable { get; }

    /// <summary>
    /// Lists the images of <paramref name="folder"/>, keeps at most <paramref name="perLabel"/> of each label (all when
    /// 0), then a seeded random sample of <paramref name="samples"/> of them (all when 0).
    /// </summary>
    /// <param name="folder">The folder.</param>
    /// <param name="samples">Images to keep, a seeded random sample; 0 keeps all.</param>
    /// <param name="seed">Seed of the sample.</param>
    /// <param name="perLabel">At most this many images of each label, the first by path; 0 keeps all.</param>
    /// <param name="checkReadable">Also decode each image's header: unreadable files are an error naming them (or, with
    /// <paramref name="skipUnreadable"/>, left out and listed in <see cref="Unreadable"/>).</param>
    /// <param name="skipUnreadable">Leave unreadable files out instead of failing.</param>
    public static ImageFolder Scan(string folder, int samples = 0, int seed = 0, int perLabel = 0, bool checkReadable = true, bool skipUnreadable = false)
    {
        ArgumentException.ThrowIfNullOrEmpty(folder);
        string root = Path.GetFullPath(folder);
        if (!Directory.Exists(root))
            throw new DirectoryNotFoundException($"The image folder '{folder}' does not exist.");
        var all = Directory.EnumerateFiles(root, "*", SearchOption.AllDirectories)
            .Where(p => Extensions.Contains(Path.GetExtension(p).ToLowerInvariant()))
            .OrderBy(p => p, StringComparer.Ordinal)
            .ToList();
        if (perLabel > 0)
            all = all.GroupBy(p => LabelOf(root, p)).SelectMany(g => g.Take(perLabel)).OrderBy(p => p, StringComparer.Ordinal).ToList();
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
        if (checkReadable)
        {
            var readable = new bool[all.Count];
            Parallel.For(0, all.Count, i =>
            {
                using var codec = SKCodec.Create(all[i]);
                readable[i] = codec is not null && codec.Info.Width > 0;
            });
            for (int i = 0; i < all.Count; i++)
                if (!readable[i])
                    bad.Add(Path.GetRelativePath(root, all[i]));
            if (bad.Count > 0 && !skipUnreadable)
                throw new InvalidDataException(
                    $"{bad.Count} of {all.Count} files in '{folder}' are not readable images: {string.Join(", ", bad.Take(5))}{(bad.Count > 5 ? ", ..." : "")}. Remove or replace them, or skip them (--skip-unreadable).");
            all = all.Where((_, i) => readable[i]).ToList();
        }
        return new ImageFolder(root, all, all.Select(p => LabelOf(root, p)).ToArray(), bad);
    }

    /// <summary>A stable fingerprint of the listing (paths, sizes and modification times), for resuming work on it.</summary>
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

    private static string LabelOf(string root, string path)
    {
        string rel = Path.GetRelativePath(root, path);
        int slash = rel.IndexOfAny(['/', '\\']);
        return slash > 0 ? rel[..slash] : "";
    }
}
