using System.Diagnostics;

namespace Microsoft.ML.ActivationAtlas.Cli.Building;

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
