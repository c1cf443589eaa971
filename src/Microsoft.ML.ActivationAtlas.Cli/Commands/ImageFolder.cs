namespace Microsoft.ML.ActivationAtlas.Cli.Commands;

/// <summary>The images under a folder, labelled by their first-level sub-folder (e.g. <c>cat/0001.jpg</c> -> <c>cat</c>).</summary>
internal static class ImageFolder
{
    private static readonly HashSet<string> s_extensions = new(StringComparer.OrdinalIgnoreCase) { ".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp" };

    public static List<(string Path, string Label)> Scan(string folder, int perClassLimit)
    {
        if (!Directory.Exists(folder))
            throw new UsageException($"--images: folder '{folder}' does not exist");
        string root = Path.GetFullPath(folder);
        var files = Directory.EnumerateFiles(root, "*", SearchOption.AllDirectories)
            .Where(f => s_extensions.Contains(Path.GetExtension(f)))
            .OrderBy(f => f, StringComparer.Ordinal)
            .Select(f =>
            {
                var rel = Path.GetRelativePath(root, f).Split(Path.DirectorySeparatorChar);
                return (Path: f, Label: rel.Length > 1 ? rel[0] : "");
            });
        if (perClassLimit > 0)
            files = files.GroupBy(f => f.Label).SelectMany(g => g.Take(perClassLimit));
        var list = files.ToList();
        if (list.Count == 0)
            throw new UsageException($"--images: no images (jpg, png, bmp, gif, webp) under '{folder}'");
        return list;
    }
}
