using System.Runtime.CompilerServices;
using Microsoft.ML.ActivationAtlas.Numerics;

namespace Microsoft.ML.ActivationAtlas.Projection.Internal;

/// <summary>A small, fast, seedable generator (<see cref="SplitMix64"/>). A value type: copy it into each worker with its own seed.</summary>
internal struct Rng
{
    private ulong _state;

    public Rng(ulong seed) => _state = seed ^ SplitMix64.Golden;

    /// <summary>A generator for one stream of a seeded computation, e.g. one block of one epoch.</summary>
    public static Rng ForStream(int seed, long a, long b = 0) => new(Hash((ulong)seed, (ulong)a, (ulong)b));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public ulong NextULong() => SplitMix64.Next(ref _state);

    /// <summary>Uniform in [0, n).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public int NextInt(int n) => (int)(((NextULong() >> 32) * (ulong)n) >> 32);

    /// <summary>Uniform in [0, 1).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public double NextDouble() => (NextULong() >> 11) * (1.0 / (1UL << 53));

    /// <summary>Standard normal (Box-Muller).</summary>
    public double NextGaussian()
    {
        double u1 = 1.0 - NextDouble(), u2 = NextDouble();
        return Math.Sqrt(-2.0 * Math.Log(u1)) * Math.Cos(2.0 * Math.PI * u2);
    }

    /// <summary>A well-mixed hash of three values, used to derive independent streams and random priorities.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong Hash(ulong a, ulong b, ulong c)
    {
        ulong h = a * 0x9E3779B97F4A7C15UL ^ (b + 0x632BE59BD9B4E019UL) * 0xC2B2AE3D27D4EB4FUL ^ (c + 0x85EBCA77C2B2AE63UL) * 0x165667B19E3779F9UL;
        h ^= h >> 33; h *= 0xFF51AFD7ED558CCDUL; h ^= h >> 33; h *= 0xC4CEB9FE1A85EC53UL; h ^= h >> 33;
        return h;
    }
}
