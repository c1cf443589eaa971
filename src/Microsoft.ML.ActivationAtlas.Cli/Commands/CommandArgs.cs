using System.Globalization;

namespace Microsoft.ML.ActivationAtlas.Cli.Commands;

/// <summary>Parsed <c>--name value</c> options and <c>--flag</c> switches of one verb.</summary>
internal sealed class CommandArgs
{
    private readonly Dictionary<string, string?> _values = new(StringComparer.Ordinal);
    private readonly HashSet<string> _read = new(StringComparer.Ordinal);

    public CommandArgs(IReadOnlyList<string> args)
    {
        for (int i = 0; i < args.Count; i++)
        {
            if (!args[i].StartsWith("--", StringComparison.Ordinal) || args[i].Length == 2)
                throw new UsageException($"unexpected argument '{args[i]}'");
            string key = args[i][2..];
            string? value = i + 1 < args.Count && !args[i + 1].StartsWith("--", StringComparison.Ordinal) ? args[++i] : null;
            _values[key] = value;
        }
    }

    /// <summary>Whether <c>--name</c> was given.</summary>
    public bool Has(string name)
    {
        _read.Add(name);
        return _values.ContainsKey(name);
    }

    /// <summary>A required option's value.</summary>
    public string Required(string name)
    {
        _read.Add(name);
        if (!_values.TryGetValue(name, out var v) || string.IsNullOrEmpty(v))
            throw new UsageException($"missing required option --{name}");
        return v;
    }

    /// <summary>An optional string option.</summary>
    public string? Optional(string name)
    {
        _read.Add(name);
        return _values.TryGetValue(name, out var v) ? v : null;
    }

    /// <summary>An optional integer option.</summary>
    public int Int(string name, int fallback) => Parse(name, fallback, s => int.Parse(s, CultureInfo.InvariantCulture));

    /// <summary>An optional floating-point option.</summary>
    public double Double(string name, double fallback) => Parse(name, fallback, s => double.Parse(s, CultureInfo.InvariantCulture));

    /// <summary>Fails on options the verb never asked for (typos such as <c>--layr</c>).</summary>
    public void RejectUnknown()
    {
        var unknown = _values.Keys.Where(k => !_read.Contains(k)).ToList();
        if (unknown.Count > 0)
            throw new UsageException($"unknown option --{unknown[0]}");
    }

    private T Parse<T>(string name, T fallback, Func<string, T> parse)
    {
        _read.Add(name);
        if (!_values.TryGetValue(name, out var v) || v is null)
            return fallback;
        try
        {
            return parse(v);
        }
        catch (FormatException)
        {
            throw new UsageException($"option --{name}: '{v}' is not a valid {typeof(T).Name.ToLowerInvariant()}");
        }
        catch (OverflowException)
        {
            throw new UsageException($"option --{name}: '{v}' is out of range");
        }
    }
}

/// <summary>A command-line usage error: printed with the verb's usage text, exit code 2.</summary>
internal sealed class UsageException(string message) : Exception(message);
