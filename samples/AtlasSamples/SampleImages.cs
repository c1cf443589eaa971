namespace AtlasSamples;

/// <summary>One image file and its label (the name of the sub-folder it is in).</summary>
public sealed class ImageInput
{
    public string ImagePath { get; set; } = "";

    public string Label { get; set; } = "";

    /// <summary>The first <paramref name="perClass"/> images of every sub-folder of <paramref name="folder"/>.</summary>
    public static ImageInput[] FromFolder(string folder, int perClass, Func<string, bool>? classFilter = null) =>
        Directory.GetDirectories(folder).Order(StringComparer.Ordinal)
            .Where(d => classFilter?.Invoke(Path.GetFileName(d)) ?? true)
            .SelectMany(d => Directory.GetFiles(d).Order(StringComparer.Ordinal).Take(perClass)
                .Select(f => new ImageInput { ImagePath = Path.GetFullPath(f), Label = Path.GetFileName(d) }))
            .ToArray();
}
