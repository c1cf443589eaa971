using System.Runtime.CompilerServices;

namespace Microsoft.ML.ActivationAtlas.Numerics;

/// <summary>
/// SplitMix64 (Steele, Lea and Flood 2014): the one seeded generator step and 64-bit mixer of the libraries. Compiled
/// into each assembly that needs it (linked source, internal), so the cores share it without depending on each other.
/// </summary>
internal static class SplitMix64
{
    /// <summary>The generator's increment, 2^64 / golden ratio.</summary>
    public const ulong Golden = 0x9E3779B97F4A7C15UL;

    /// <summary>The bijective 64-bit finaliser: every input bit affects every output bit.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong Mix(ulong z)
    {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    /// <summary>Advances <paramref name="state"/> by one step and returns the step's output.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong Next(ref ulong state) => Mix(state += Golden);
}
