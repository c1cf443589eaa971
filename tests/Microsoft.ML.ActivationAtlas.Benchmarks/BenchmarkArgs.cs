using System.Globalization;

namespace Microsoft.ML.ActivationAtlas.Benchmarks;

/// <summary>Minimal <c>--name value</c> / <c>--flag</c> parsing shared by the benchmark verbs.</summary>
internal sealed class BenchmarkArgs
{
    private readonly Dictionary<string, string?> _values = new(StringComparer.Ordinal);

    public BenchmarkArgs(string[] args)
    {
        for (int i = 0; i < args.Length; i++)
        {
            if (!args[i].StartsWith("--", StringComparison.Ordinal))
                throw new ArgumentException($"Unexpected argument '{args[i]}'.");
            string key = args[i][2..];
            string? value = i + 1 < args.Length && !args[i + 1].StartsWith("--", StringComparison.Ordinal) ? args[++i] : null;
            _values[key] = value;
        }
    }

    public bool Has(string name) => _values.ContainsKey(name);

    public string Get(string name, string fallback) => _values.TryGetValue(name, out var v) && v is not null ? v : fallback;

    public int Get(string name, int fallback) => _values.TryGetValue(name, out var v) && v is not null ? int.Parse(v, CultureInfo.InvariantCulture) : fallback;

    public double Get(string name, double fallback) => _values.TryGetValue(name, out var v) && v is not null ? double.Parse(v, CultureInfo.InvariantCulture) : fallback;
}
