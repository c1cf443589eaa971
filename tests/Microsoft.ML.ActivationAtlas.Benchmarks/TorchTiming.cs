using System.Diagnostics;
using System.Globalization;

namespace Microsoft.ML.ActivationAtlas.Benchmarks;

/// <summary>Runs a PyTorch timing script of Python/ with /usr/bin/python3 and reads the mean ms it prints last.</summary>
internal static class TorchTiming
{
    /// <summary>The last line of the script's output as a number (ms per batch).</summary>
    /// <param name="script">The script's file name in Python/.</param>
    /// <param name="args">Its arguments.</param>
    public static double MeanMilliseconds(string script, params object[] args)
    {
        var psi = new ProcessStartInfo("/usr/bin/python3") { RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "Python", script));
        foreach (var arg in args)
            psi.ArgumentList.Add(Convert.ToString(arg, CultureInfo.InvariantCulture)!);
        using var p = Process.Start(psi)!;
        var stderr = p.StandardError.ReadToEndAsync();
        string stdout = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0)
            throw new InvalidOperationException($"PyTorch timing ({script}) failed ({p.ExitCode}): {stderr.Result}");
        return double.Parse(stdout.Trim().Split('\n')[^1], CultureInfo.InvariantCulture);
    }
}
