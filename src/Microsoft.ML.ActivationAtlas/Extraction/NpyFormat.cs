using System.Globalization;
using System.Text;

namespace Microsoft.ML.ActivationAtlas.Extraction;

/// <summary>
/// Reads and writes 2-D little-endian float32 arrays in NumPy's <c>.npy</c> format (version 1.0), the activation
/// file format of <c>atlas extract</c>: <c>numpy.load("acts.npy")</c> gives a [rows, channels] array.
/// </summary>
public static class NpyFormat
{
    private static readonly byte[] s_magic = [0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y', 1, 0];

    /// <summary>The fixed header size this writer uses (so the row count can be rewritten in place).</summary>
    public const int HeaderSize = 128;

    /// <summary>Writes the header of a [rows, columns] float32 array (exactly <see cref="HeaderSize"/> bytes).</summary>
    /// <param name="stream">The stream, positioned at its start.</param>
    /// <param name="rows">Rows.</param>
    /// <param name="columns">Columns.</param>
    public static void WriteHeader(Stream stream, long rows, int columns)
    {
        string dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (" +
            rows.ToString(CultureInfo.InvariantCulture) + ", " + columns.ToString(CultureInfo.InvariantCulture) + "), }";
        int pad = HeaderSize - s_magic.Length - 2 - dict.Length - 1;
        if (pad < 0)
            throw new ArgumentOutOfRangeException(nameof(rows), "The array shape does not fit the .npy header.");
        var header = Encoding.ASCII.GetBytes(dict + new string(' ', pad) + "\n");
        stream.Write(s_magic);
        Span<byte> len = [(byte)(header.Length & 0xff), (byte)(header.Length >> 8)];
        stream.Write(len);
        stream.Write(header);
    }

    /// <summary>Writes a whole [rows, columns] array.</summary>
    /// <param name="path">The file (written through a temporary name).</param>
    /// <param name="data">Row-major values.</param>
    /// <param name="columns">Columns.</param>
    public static void Write(string path, ReadOnlySpan<float> data, int columns)
    {
        if (columns <= 0 || data.Length % columns != 0)
            throw new ArgumentException($"{data.Length} values do not form rows of {columns}.", nameof(columns));
        var copy = data.ToArray();
        Onnx.AtomicFile.Write(path, s =>
        {
            WriteHeader(s, copy.Length / columns, columns);
            s.Write(System.Runtime.InteropServices.MemoryMarshal.AsBytes(copy.AsSpan()));
        });
    }

    /// <summary>Reads a 2-D (or 1-D, read as one column) little-endian float32 C-order <c>.npy</c> file.</summary>
    /// <param name="path">The file.</param>
    /// <exception cref="InvalidDataException">The file is not such an array.</exception>
    public static (float[] Data, int Rows, int Columns) Read(string path)
    {
        using var s = File.OpenRead(path);
        var magic = new byte[8];
        s.ReadExactly(magic);
        if (!magic.AsSpan(0, 6).SequenceEqual(s_magic.AsSpan(0, 6)))
            throw new InvalidDataException($"'{path}' is not a .npy file.");
        int headerLength;
        if (magic[6] == 1)
        {
            var l = new byte[2];
            s.ReadExactly(l);
            headerLength = l[0] | l[1] << 8;
        }
        else
        {
            var l = new byte[4];
            s.ReadExactly(l);
            headerLength = BitConverter.ToInt32(l);
        }
        var headerBytes = new byte[headerLength];
        s.ReadExactly(headerBytes);
        string header = Encoding.ASCII.GetString(headerBytes);
        if (!header.Contains("'<f4'", StringComparison.Ordinal) || header.Contains("'fortran_order': True", StringComparison.Ordinal))
            throw new InvalidDataException($"'{path}' is not a little-endian float32 C-order array: {header.Trim()}");
        int open = header.IndexOf("'shape': (", StringComparison.Ordinal) + 10;
        int close = header.IndexOf(')', open);
        var dims = header[open..close].Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(d => long.Parse(d, CultureInfo.InvariantCulture)).ToArray();
        if (dims.Length is < 1 or > 2)
            throw new InvalidDataException($"'{path}' holds a {dims.Length}-D array; 1-D or 2-D expected.");
        long rows = dims[0], cols = dims.Length == 2 ? dims[1] : 1;
        var data = new float[checked(rows * cols)];
        s.ReadExactly(System.Runtime.InteropServices.MemoryMarshal.AsBytes(data.AsSpan()));
        return (data, (int)rows, (int)cols);
    }
}
