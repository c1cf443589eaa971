using System.Globalization;
using System.Numerics;

namespace Microsoft.ML.ActivationAtlas.Binning;

/// <summary>
/// Nested square grids (for example 20, 40, 80, 160 cells a side) over the unit square. Every grid size is the finest
/// divided by a power of two, so each coarse cell is exactly the union of 2x2 (4x4, ...) finer cells and coarse
/// counts and sums are computed from the finest by summing children.
/// </summary>
/// <remarks>
/// Cells are half-open: cell <c>i</c> of a grid of size <c>G</c> holds <c>i/G &lt;= u &lt; (i+1)/G</c>, except the last,
/// which also holds <c>u = 1</c>. A point therefore belongs to exactly one cell per level. Cell <c>(0, 0)</c> is the
/// lowest x and lowest y; images and the viewer draw it top-left.
/// </remarks>
public sealed class GridLevels
{
    private readonly int[] _sizes;
    private readonly int[] _shifts;

    /// <summary>Validates and sorts <paramref name="sizes"/> (coarse to fine).</summary>
    public GridLevels(IEnumerable<int> sizes)
    {
        ArgumentNullException.ThrowIfNull(sizes);
        _sizes = sizes.Distinct().OrderBy(s => s).ToArray();
        if (_sizes.Length == 0)
            throw new ArgumentException("At least one grid size is needed.", nameof(sizes));
        if (_sizes[0] < 1)
            throw new ArgumentOutOfRangeException(nameof(sizes), $"Grid sizes must be positive; got {_sizes[0]}.");
        int finest = _sizes[^1];
        if (finest > 2048)
            throw new ArgumentOutOfRangeException(nameof(sizes), $"The finest grid ({finest}) is larger than 2048 cells a side.");
        _shifts = new int[_sizes.Length];
        for (int i = 0; i < _sizes.Length; i++)
        {
            int s = _sizes[i];
            if (finest % s != 0 || !BitOperations.IsPow2(finest / s))
                throw new ArgumentOutOfRangeException(nameof(sizes),
                    $"Grid size {s} does not split the finest grid ({finest}) exactly: every size must be the finest divided by a power of two (e.g. 20,40,80,160). Sizes given: {string.Join(",", _sizes.Select(x => x.ToString(CultureInfo.InvariantCulture)))}.");
            _shifts[i] = BitOperations.Log2((uint)(finest / s));
        }
    }

    /// <summary>Grid sizes (cells a side), coarse to fine.</summary>
    public IReadOnlyList<int> Sizes => _sizes;

    /// <summary>Number of levels.</summary>
    public int Count => _sizes.Length;

    /// <summary>The finest grid size.</summary>
    public int Finest => _sizes[^1];

    /// <summary>How many times level <paramref name="level"/> halves the finest grid (its cell is the finest cell shifted right by this).</summary>
    public int Shift(int level) => _shifts[level];

    /// <summary>The finest cell (x, y) of a normalised point.</summary>
    public (int X, int Y) FinestCell(float u, float v) => (Index(u, Finest), Index(v, Finest));

    /// <summary>Half-open cell index of <paramref name="u"/> in [0, 1] on a grid of <paramref name="size"/> cells.</summary>
    internal static int Index(float u, int size)
    {
        int i = (int)(u * size);
        return i < 0 ? 0 : i >= size ? size - 1 : i;
    }

    /// <summary>Interleaves the bits of x and y (Z order): coarse cells are contiguous ranges of finest codes.</summary>
    internal static int Morton(int x, int y) => (int)(Spread((uint)x) | (Spread((uint)y) << 1));

    /// <summary>The inverse of <see cref="Morton"/>.</summary>
    internal static (int X, int Y) FromMorton(int code) => ((int)Compact((uint)code), (int)Compact((uint)code >> 1));

    private static uint Spread(uint v)
    {
        v &= 0xFFFF;
        v = (v | (v << 8)) & 0x00FF00FF;
        v = (v | (v << 4)) & 0x0F0F0F0F;
        v = (v | (v << 2)) & 0x33333333;
        v = (v | (v << 1)) & 0x55555555;
        return v;
    }

    private static uint Compact(uint v)
    {
        v &= 0x55555555;
        v = (v | (v >> 1)) & 0x33333333;
        v = (v | (v >> 2)) & 0x0F0F0F0F;
        v = (v | (v >> 4)) & 0x00FF00FF;
        v = (v | (v >> 8)) & 0x0000FFFF;
        return v;
    }
}
