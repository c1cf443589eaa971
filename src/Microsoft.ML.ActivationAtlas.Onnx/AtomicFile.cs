namespace Microsoft.ML.ActivationAtlas.Onnx;

/// <summary>Writes a file under a temporary name and renames it when complete, so no half-written file is left.</summary>
internal static class AtomicFile
{
    /// <summary>Writes <paramref name="path"/> through <paramref name="write"/>; on failure the destination is untouched.</summary>
    /// <param name="path">The destination file.</param>
    /// <param name="write">Writes the content to the given stream (opened for reading too: zip archives in update mode read back).</param>
    public static void Write(string path, Action<Stream> write)
    {
        ArgumentNullException.ThrowIfNull(write);
        using var file = Create(path);
        write(file.Stream);
        file.Commit();
    }

    /// <summary>
    /// Opens a temporary sibling of <paramref name="path"/> for a file written over time (streamed rows, headers
    /// patched at the end); <see cref="PendingFile.Commit"/> renames it into place, disposing without committing
    /// deletes it.
    /// </summary>
    /// <param name="path">The destination file.</param>
    public static PendingFile Create(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        return new PendingFile(Path.GetFullPath(path));
    }

    /// <summary>A file being written under a temporary name.</summary>
    internal sealed class PendingFile : IDisposable
    {
        private readonly string _temp;
        private bool _done;

        internal PendingFile(string path)
        {
            Path = path;
            string dir = System.IO.Path.GetDirectoryName(path)!;
            Directory.CreateDirectory(dir);
            _temp = System.IO.Path.Combine(dir, "." + System.IO.Path.GetFileName(path) + "." + Environment.ProcessId + "." + Guid.NewGuid().ToString("N")[..8] + ".tmp");
            Stream = new FileStream(_temp, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, 1 << 16);
        }

        /// <summary>The destination.</summary>
        public string Path { get; }

        /// <summary>The temporary file's stream.</summary>
        public FileStream Stream { get; }

        /// <summary>Closes the stream and moves the temporary file over the destination.</summary>
        public void Commit()
        {
            ObjectDisposedException.ThrowIf(_done, this);
            Stream.Dispose();
            File.Move(_temp, Path, overwrite: true);
            _done = true;
        }

        /// <summary>Closes the stream; without <see cref="Commit"/> the temporary file is deleted.</summary>
        public void Dispose()
        {
            Stream.Dispose();
            if (_done)
                return;
            _done = true;
            try { File.Delete(_temp); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        }
    }
}
