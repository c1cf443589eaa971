using System.Diagnostics;

namespace Microsoft.ML.ActivationAtlas.Cli.Commands;

/// <summary>A one-line progress bar on standard error, redrawn at most ten times a second.</summary>
internal sealed class ProgressBar(long total, string unit)
{
    private readonly Stopwatch _watch = Stopwatch.StartNew();
    private long _lastDraw = -1000;

    public void Report(long done)
    {
        long now = _watch.ElapsedMilliseconds;
        if (now - _lastDraw < 100)
            return;
        _lastDraw = now;
        Draw(done);
    }

    public void Done(long done)
    {
        Draw(done);
        Console.Error.WriteLine();
    }

    private void Draw(long done)
    {
        double fraction = total > 0 ? Math.Min(1, (double)done / total) : 1;
        int filled = (int)(fraction * 30);
        double rate = done / Math.Max(1e-3, _watch.Elapsed.TotalSeconds);
        double eta = rate > 0 && total > done ? (total - done) / rate : 0;
        Console.Error.Write($"\r[{new string('#', filled)}{new string('.', 30 - filled)}] {done}/{total} {unit} {rate,7:F1}/s eta {eta,5:F0} s ");
    }
}
