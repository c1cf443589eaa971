using System.Globalization;

namespace Microsoft.ML.ActivationAtlas.Cli.Commands;

/// <summary>Parsed <c>--name value</c> options and <c>--flag</c> switches of one verb.</summary>
internal sealed class CommandArgs
{
    private readonly Dictionary<string, string?> _values = new(StringComparer.Ordinal);
    private readonly HashSet<string> _read = new(StringComparer.Ordinal);

    private readonly List<string> _words = [];
    private readonly List<string>? _rest;
    private int _wordsRead;
    private bool _restRead;

    public CommandArgs(IReadOnlyList<string> args)
    {
        for (int i = 0; i < args.Count; i++)
        {
            if (args[i] == "--")
            {
                _rest = args.Skip(i + 1).ToList();
                break;
            }
            if (!args[i].StartsWith("--", StringComparison.Ordinal))
            {
                if (_values.Count > 0)
                    throw new UsageException($"unexpected argument '{args[i]}'");
                _words.Add(args[i]); // leading words, e.g. 'slurm' in 'atlas submit slurm'
                continue;
            }
            string key = args[i][2..];
            string? value = i + 1 < args.Count && !args[i + 1].StartsWith("--", StringComparison.Ordinal) ? args[++i] : null;
            _values[key] = value;
        }
    }

    /// <summary>The words before the first option (e.g. <c>slurm</c> of <c>atlas submit slurm</c>).</summary>
    public IReadOnlyList<string> Words
    {
        get
        {
            _wordsRead = _words.Count;
            return _words;
        }
    }

    /// <summary>The arguments after <c>--</c>, or null when there is no <c>--</c>.</summary>
    public IReadOnlyList<string>? Rest
    {
        get
        {
            _restRead = true;
            return _rest;
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

    /// <summary>
    /// An optional integer option of at least <paramref name="minimum"/>: a value below it is a usage error naming the
    /// option, found here rather than reported by the library under its own option name.
    /// </summary>
    public int Int(string name, int fallback, int minimum)
    {
        int value = Int(name, fallback);
        if (value < minimum)
            throw new UsageException($"option --{name}: {value} must be at least {minimum}");
        return value;
    }

    /// <summary>An optional floating-point option.</summary>
    public double Double(string name, double fallback) => Parse(name, fallback, s => double.Parse(s, CultureInfo.InvariantCulture));

    /// <summary>Fails on options the verb never asked for (typos such as <c>--layr</c>).</summary>
    public void RejectUnknown()
    {
        if (_wordsRead < _words.Count)
            throw new UsageException($"unexpected argument '{_words[_wordsRead]}'");
        if (_rest is not null && !_restRead)
            throw new UsageException("unexpected argument '--'");
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
