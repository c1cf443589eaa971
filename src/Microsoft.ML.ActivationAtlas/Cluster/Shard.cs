using System.Globalization;

namespace Microsoft.ML.ActivationAtlas.Cluster;

/// <summary>
/// One deterministic part of a list of items: shard <see cref="Index"/> of <see cref="Count"/> takes the contiguous
/// rows <c>[Index * N / Count, (Index + 1) * N / Count)</c> of the N items in their (sorted, sampled) order, so the
/// shards of a folder cover every image exactly once and concatenate in the order one process would have used.
/// </summary>
/// <param name="Index">The shard, from 0.</param>
/// <param name="Count">The number of shards, at least 1.</param>
public readonly record struct Shard(int Index, int Count)
{
    /// <summary>The whole list as one shard.</summary>
    public static Shard Whole => new(0, 1);

    /// <summary>Whether this is the whole list.</summary>
    public bool IsWhole => Count == 1;

    /// <summary>Parses <c>k/n</c> (0 &lt;= k &lt; n).</summary>
    /// <exception cref="FormatException">The text is not <c>k/n</c> with 0 &lt;= k &lt; n.</exception>
    public static Shard Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var parts = text.Split('/');
        if (parts.Length == 2
            && int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out int k)
            && int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out int n)
            && n >= 1 && k < n)
            return new Shard(k, n);
        throw new FormatException($"'{text}' is not a shard: expected k/n with 0 <= k < n, e.g. 0/4.");
    }

    /// <summary>The first row of this shard among <paramref name="total"/> rows.</summary>
    public long Start(long total) => Validate(total) * Index / Count;

    /// <summary>One past the last row of this shard among <paramref name="total"/> rows.</summary>
    public long End(long total) => Validate(total) * (Index + 1) / Count;

    /// <summary>The rows of this shard among <paramref name="items"/>.</summary>
    public IReadOnlyList<T> Take<T>(IReadOnlyList<T> items)
    {
        ArgumentNullException.ThrowIfNull(items);
        if (IsWhole)
            return items;
        int start = (int)Start(items.Count), end = (int)End(items.Count);
        var result = new T[end - start];
        for (int i = start; i < end; i++)
            result[i - start] = items[i];
        return result;
    }

    /// <summary>The shard's folder name inside a shard folder: <c>k-of-n</c>.</summary>
    public string FolderName => string.Create(CultureInfo.InvariantCulture, $"{Index}-of-{Count}");

    /// <summary><c>k/n</c>.</summary>
    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"{Index}/{Count}");

    /// <summary>The folder that holds the shards of the output <paramref name="output"/>: <c>&lt;output&gt;.shards</c>.</summary>
    public static string ShardFolder(string output) =>
        Path.TrimEndingDirectorySeparator(Path.GetFullPath(output)) + ".shards";

    private long Validate(long total)
    {
        if (Count < 1 || Index < 0 || Index >= Count)
            throw new InvalidOperationException($"Shard {Index}/{Count} is not valid: expected 0 <= k < n.");
        ArgumentOutOfRangeException.ThrowIfNegative(total);
        return total;
    }
}
