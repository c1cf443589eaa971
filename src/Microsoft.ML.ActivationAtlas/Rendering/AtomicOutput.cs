namespace Microsoft.ML.ActivationAtlas.Rendering;

/// <summary>Writes outputs under a temporary name and renames them when complete, so nothing half-written is left.</summary>
internal static class AtomicOutput
{
    /// <summary>Writes a file through <paramref name="write"/> to a temporary sibling, then moves it over <paramref name="path"/>.</summary>
    public static void WriteFile(string path, Action<Stream> write) => Onnx.AtomicFile.Write(path, write);

    /// <summary>
    /// Fills a temporary sibling folder through <paramref name="write"/>, then renames it to <paramref name="directory"/>,
    /// which must not exist unless <paramref name="overwrite"/> is set.
    /// </summary>
    public static void WriteDirectory(string directory, bool overwrite, Action<string> write)
    {
        string full = Path.GetFullPath(directory).TrimEnd(Path.DirectorySeparatorChar);
        if (Directory.Exists(full) && !overwrite)
            throw new IOException($"The output folder '{full}' already exists; choose another or remove it first.");
        if (File.Exists(full))
            throw new IOException($"The output path '{full}' is a file, not a folder.");
        string parent = Path.GetDirectoryName(full)!;
        Directory.CreateDirectory(parent);
        string tmp = Path.Combine(parent, $".{Path.GetFileName(full)}.{Guid.NewGuid():N}.tmp");
        Directory.CreateDirectory(tmp);
        try
        {
            write(tmp);
            if (Directory.Exists(full))
                Directory.Delete(full, recursive: true);
            Directory.Move(tmp, full);
        }
        finally
        {
            if (Directory.Exists(tmp))
                Directory.Delete(tmp, recursive: true);
        }
    }
}
