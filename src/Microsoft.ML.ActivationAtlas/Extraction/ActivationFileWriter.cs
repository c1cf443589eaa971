using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;

namespace Microsoft.ML.ActivationAtlas.Extraction;

/// <summary>
/// Streams extracted activations to disk in the format of <c>atlas extract</c>:
/// <list type="bullet">
/// <item><c>&lt;stem&gt;.npy</c> (one layer) or <c>&lt;stem&gt;.&lt;layer&gt;.npy</c> (several): float32 [rows, channels];</item>
/// <item><c>&lt;stem&gt;.rows.csv</c>: <c>row,image,label,y,x</c> per row (RFC 4180 quoting);</item>
/// <item><c>&lt;stem&gt;.json</c>: model, layers (name, friendly name, shape, file), sampling, seed, margin, row count, skipped rows.</item>
/// </list>
/// Everything is written under temporary names and renamed by <see cref="Complete"/>; disposing without completing
/// deletes the temporary files.
/// </summary>
public sealed class ActivationFileWriter : IDisposable
{
    private readonly string _stem;
    private readonly string[] _npyPaths;
    private readonly Onnx.AtomicFile.PendingFile[] _npy;
    private readonly int[] _channels;
    private readonly Onnx.AtomicFile.PendingFile _csvFile;
    private readonly StreamWriter _csv;
    private long _rows;
    private bool _csvClosed;

    /// <summary>Opens the temporary files.</summary>
    /// <param name="outputPath">The <c>.npy</c> path given by the user (its stem names the sidecars).</param>
    /// <param name="layerNames">The layers, in column order (used to name files when there are several).</param>
    /// <param name="channels">Channels of each layer.</param>
    public ActivationFileWriter(string outputPath, IReadOnlyList<string> layerNames, IReadOnlyList<int> channels)
    {
        ArgumentException.ThrowIfNullOrEmpty(outputPath);
        string full = Path.GetFullPath(outputPath);
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        _stem = full.EndsWith(".npy", StringComparison.OrdinalIgnoreCase) ? full[..^4] : full;
        _channels = channels.ToArray();
        _npyPaths = layerNames.Count == 1
            ? [_stem + ".npy"]
            : layerNames.Select(l => _stem + "." + Sanitize(l) + ".npy").ToArray();
        _npy = _npyPaths.Select(Onnx.AtomicFile.Create).ToArray();
        for (int i = 0; i < _npy.Length; i++)
            NpyFormat.WriteHeader(_npy[i].Stream, 0, _channels[i]);
        _csvFile = Onnx.AtomicFile.Create(_stem + ".rows.csv");
        _csv = new StreamWriter(_csvFile.Stream, new UTF8Encoding(false), 1 << 16, leaveOpen: true);
        _csv.WriteLine("row,image,label,y,x");
    }

    /// <summary>The files written (after <see cref="Complete"/>): activation arrays, then the CSV and JSON sidecars.</summary>
    public IReadOnlyList<string> Files => [.. _npyPaths, _stem + ".rows.csv", _stem + ".json"];

    /// <summary>Rows written so far.</summary>
    public long Rows => _rows;

    /// <summary>Appends one row.</summary>
    /// <param name="image">The image path.</param>
    /// <param name="label">The label (sub-folder name).</param>
    /// <param name="y">Position row.</param>
    /// <param name="x">Position column.</param>
    /// <param name="activations">One vector per layer.</param>
    public void Append(string image, string label, int y, int x, IReadOnlyList<ReadOnlyMemory<float>> activations)
    {
        for (int i = 0; i < _npy.Length; i++)
        {
            if (activations[i].Length != _channels[i])
                throw new ArgumentException($"Layer {i} vector has {activations[i].Length} values; {_channels[i]} expected.", nameof(activations));
            _npy[i].Stream.Write(MemoryMarshal.AsBytes(activations[i].Span));
        }
        _csv.Write(_rows.ToString(CultureInfo.InvariantCulture));
        _csv.Write(',');
        _csv.Write(Quote(image));
        _csv.Write(',');
        _csv.Write(Quote(label));
        _csv.Write(',');
        _csv.Write(y.ToString(CultureInfo.InvariantCulture));
        _csv.Write(',');
        _csv.WriteLine(x.ToString(CultureInfo.InvariantCulture));
        _rows++;
    }

    /// <summary>
    /// Appends every row of files this writer's format wrote (one <c>.npy</c> per layer, in layer order, and the
    /// <c>.rows.csv</c>), renumbering the rows: concatenating the files of the parts of a list gives the bytes one
    /// writer over the whole list gives.
    /// </summary>
    internal void AppendFiles(IReadOnlyList<string> npyPaths, string rowsCsvPath)
    {
        if (npyPaths.Count != _npy.Length)
            throw new InvalidDataException($"'{rowsCsvPath}': {npyPaths.Count} activation files, {_npy.Length} expected.");
        long rows = -1;
        for (int i = 0; i < _npy.Length; i++)
        {
            using var source = File.OpenRead(npyPaths[i]);
            long bytes = source.Length - NpyFormat.HeaderSize, rowBytes = (long)_channels[i] * sizeof(float);
            if (bytes < 0 || bytes % rowBytes != 0 || (rows >= 0 && bytes / rowBytes != rows))
                throw new InvalidDataException($"'{npyPaths[i]}' does not hold whole rows of {_channels[i]} float32 values like its other layers.");
            rows = bytes / rowBytes;
            source.Position = NpyFormat.HeaderSize;
            source.CopyTo(_npy[i].Stream);
        }
        // Records end at a line break outside quotes (a quoted path may hold one); the first field is the row.
        string text = File.ReadAllText(rowsCsvPath, Encoding.UTF8);
        int start = text.IndexOf('\n', StringComparison.Ordinal) + 1;
        long appended = 0;
        bool quoted = false;
        for (int i = start; i < text.Length; i++)
        {
            if (text[i] == '"')
                quoted = !quoted;
            else if (text[i] == '\n' && !quoted)
            {
                string record = text[start..(i + 1)];
                _csv.Write((_rows + appended).ToString(CultureInfo.InvariantCulture));
                _csv.Write(record.AsSpan(record.IndexOf(',', StringComparison.Ordinal)));
                appended++;
                start = i + 1;
            }
        }
        if (start != text.Length || (rows >= 0 && appended != rows))
            throw new InvalidDataException($"'{rowsCsvPath}' lists {appended} rows, but its activation files hold {rows}.");
        _rows += appended;
    }

    /// <summary>Finalizes the headers, writes the JSON sidecar and renames every file into place.</summary>
    /// <param name="metadata">Settings to record in the JSON sidecar (model, layers, sampling, ...).</param>
    public void Complete(IReadOnlyDictionary<string, object?> metadata)
    {
        foreach (var (file, channels) in _npy.Zip(_channels))
        {
            file.Stream.Position = 0;
            NpyFormat.WriteHeader(file.Stream, _rows, channels);
        }
        CloseCsv(); // leaves the stream open for the commit below
        var meta = new Dictionary<string, object?>(metadata)
        {
            ["rows"] = _rows,
            ["files"] = _npyPaths.Select(Path.GetFileName).ToArray(),
            ["rows_file"] = Path.GetFileName(_stem + ".rows.csv"),
            ["format"] = "float32 .npy [rows, channels] per layer; rows.csv: row,image,label,y,x (position on the first layer's grid; -1,-1 for the spatial mean)",
        };
        // The arrays and rows first, the JSON last: a reader that finds the JSON finds complete files beside it.
        foreach (var file in _npy)
            file.Commit();
        _csvFile.Commit();
        Onnx.AtomicFile.Write(_stem + ".json", s => JsonSerializer.Serialize(s, meta, new JsonSerializerOptions { WriteIndented = true }));
    }

    /// <summary>Closes the files; without <see cref="Complete"/> the temporary files are deleted.</summary>
    public void Dispose()
    {
        CloseCsv();
        foreach (var file in _npy)
            file.Dispose();
        _csvFile.Dispose();
    }

    // A StreamWriter that leaves its stream open flushes it on every Dispose, so it is closed once.
    private void CloseCsv()
    {
        if (_csvClosed)
            return;
        _csvClosed = true;
        _csv.Dispose();
    }

    private static string Sanitize(string name)
    {
        var sb = new StringBuilder(name.Length);
        foreach (char c in name.TrimStart('/'))
            sb.Append(char.IsLetterOrDigit(c) || c is '.' or '-' or '_' ? c : '_');
        return sb.ToString();
    }

    private static string Quote(string s) =>
        s.IndexOfAny([',', '"', '\n', '\r']) < 0 ? s : "\"" + s.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"";
}
