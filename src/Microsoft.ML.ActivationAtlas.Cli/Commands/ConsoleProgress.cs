using System.Diagnostics;
using Microsoft.ML.ActivationAtlas.Building;

namespace Microsoft.ML.ActivationAtlas.Cli.Commands;

/// <summary>A one-line progress bar for one stage on standard error, with elapsed time and an estimate of the rest.</summary>
internal sealed class ConsoleProgress : IProgress<double>, IDisposable
{
    private readonly string _stage;
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private readonly object _gate = new();
    private double _last = -1;
    private long _lastDrawMs = -1000;
    private bool _done;

    public ConsoleProgress(string stage)
    {
        _stage = stage;
        Report(0);
    }

    public TimeSpan Elapsed => _clock.Elapsed;

    public void Report(double value)
    {
        lock (_gate)
        {
            if (_done)
                return;
            value = Math.Clamp(value, 0, 1);
            long now = _clock.ElapsedMilliseconds;
            if (value < 1 && now - _lastDrawMs < 250 && value - _last < 0.05)
                return;
            _last = value;
            _lastDrawMs = now;
            Draw(value, final: false);
        }
    }

    /// <summary>Ends the line with the stage's total time.</summary>
    public void Done(string? note = null)
    {
        lock (_gate)
        {
            if (_done)
                return;
            Draw(1, final: true, note);
            _done = true;
        }
    }

    private void Draw(double value, bool final, string? note = null)
    {
        const int width = 24;
        int filled = (int)Math.Round(value * width);
        double seconds = _clock.Elapsed.TotalSeconds;
        string eta = final ? $"{seconds:F1} s" : value > 0.02 ? $"{seconds:F0} s, ~{seconds / value - seconds:F0} s left" : $"{seconds:F0} s";
        string line = $"  {_stage,-12} [{new string('#', filled)}{new string('.', width - filled)}] {value * 100,5:F1}%  {eta}{(note is null ? "" : "  " + note)}";
        if (Console.IsErrorRedirected)
        {
            if (final)
                Console.Error.WriteLine(line);
        }
        else
            Console.Error.Write("\r" + line.PadRight(Math.Max(line.Length, 100)) + (final ? "\n" : ""));
    }

    public void Dispose() => Done();
}

/// <summary>Prints the stages of a library call (an atlas build, a class atlas, ...) as one progress line each.</summary>
internal sealed class ConsoleStages : IProgress<AtlasBuildProgress>, IDisposable
{
    private readonly object _gate = new();
    private ConsoleProgress? _current;
    private string? _stage;

    public void Report(AtlasBuildProgress value)
    {
        lock (_gate)
            Draw(value);
    }

    private void Draw(AtlasBuildProgress value)
    {
        if (value.Stage != _stage)
        {
            _current?.Dispose();
            _current = null;
            _stage = value.Stage;
        }
        switch (value.Status)
        {
            case AtlasStageStatus.Reused:
                Console.Error.WriteLine($"  {value.Stage,-12} reused{(value.Note is null ? "" : $" ({value.Note})")}");
                _stage = null;
                break;
            case AtlasStageStatus.Done:
                (_current ??= new ConsoleProgress(value.Stage)).Done(value.Note);
                _current = null;
                _stage = null;
                break;
            default:
                (_current ??= new ConsoleProgress(value.Stage)).Report(value.Fraction);
                break;
        }
    }

    public void Dispose() => _current?.Dispose();
}
