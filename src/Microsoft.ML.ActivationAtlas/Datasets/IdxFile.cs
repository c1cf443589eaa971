using System.Buffers.Binary;
using System.IO.Compression;

namespace Microsoft.ML.ActivationAtlas.Datasets;

/// <summary>Reads unsigned-byte IDX files (the MNIST format), gzip-compressed or plain.</summary>
public static class IdxFile
{
    /// <summary>Reads an IDX file of unsigned bytes.</summary>
    /// <param name="path">The <c>.idx</c> or <c>.gz</c> file.</param>
    /// <returns>The dimensions (e.g. [count, 28, 28]) and the bytes, row-major.</returns>
    /// <exception cref="InvalidDataException">The file is not an unsigned-byte IDX file or is truncated.</exception>
    public static (int[] Shape, byte[] Data) ReadBytes(string path)
    {
        if (!File.Exists(path))
            throw new FileNotFoundException($"IDX file '{path}' does not exist.", path);
        using var file = File.OpenRead(path);
        using Stream s = path.EndsWith(".gz", StringComparison.OrdinalIgnoreCase) ? new GZipStream(file, CompressionMode.Decompress) : file;
        Span<byte> header = stackalloc byte[4];
        ReadExactly(s, header, path, "header");
        if (header[0] != 0 || header[1] != 0)
            throw new InvalidDataException($"{path}: not an IDX file (the magic number must start with two zero bytes).");
        if (header[2] != 0x08)
            throw new InvalidDataException($"{path}: IDX element type 0x{header[2]:X2} is not supported (only unsigned bytes, 0x08).");
        int rank = header[3];
        if (rank < 1 || rank > 4)
            throw new InvalidDataException($"{path}: IDX rank {rank} is not supported.");
        var shape = new int[rank];
        long total = 1;
        Span<byte> dim = stackalloc byte[4];
        for (int i = 0; i < rank; i++)
        {
            ReadExactly(s, dim, path, "dimensions");
            shape[i] = BinaryPrimitives.ReadInt32BigEndian(dim);
            if (shape[i] < 0)
                throw new InvalidDataException($"{path}: dimension {i} is negative.");
            total *= shape[i];
        }
        if (total > Array.MaxLength)
            throw new InvalidDataException($"{path}: {total} elements are too many.");
        var data = new byte[total];
        ReadExactly(s, data, path, "data");
        return (shape, data);
    }

    private static void ReadExactly(Stream s, Span<byte> buffer, string path, string what)
    {
        try
        {
            s.ReadExactly(buffer);
        }
        catch (EndOfStreamException)
        {
            throw new InvalidDataException($"{path}: the file ends inside its {what}; it is truncated.");
        }
    }
}
