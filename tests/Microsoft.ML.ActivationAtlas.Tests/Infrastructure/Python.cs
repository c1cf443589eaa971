using System.Diagnostics;
using System.Runtime.InteropServices;

namespace Microsoft.ML.ActivationAtlas.Tests.Infrastructure;

/// <summary>
/// Runs reference implementations in the system Python (<c>/usr/bin/python3</c> with Debian's <c>python3-sklearn</c>
/// and <c>umap-learn</c>, which <c>.ci/run</c> installs). Tests that compare with them fail, not skip, without them.
/// </summary>
internal static class Python
{
    public const string Executable = "/usr/bin/python3";

    /// <summary>Runs <paramref name="script"/> with <paramref name="args"/>; returns its standard output.</summary>
    public static string Run(string script, params string[] args)
    {
        if (!File.Exists(Executable))
            throw new FileNotFoundException($"{Executable} is missing: install the Debian packages python3-sklearn and umap-learn (.ci/run does).");
        var start = new ProcessStartInfo(Executable)
        {
            RedirectStandardError = true,
            RedirectStandardOutput = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add("-c");
        start.ArgumentList.Add(script);
        foreach (var a in args)
            start.ArgumentList.Add(a);
        // The reference runs single-threaded, so that it does not compete with the test run for the cores.
        start.Environment["OMP_NUM_THREADS"] = "1";
        start.Environment["NUMBA_NUM_THREADS"] = "1";
        using var process = Process.Start(start)!;
        var stderr = process.StandardError.ReadToEndAsync();
        string stdout = process.StandardOutput.ReadToEnd();
        if (!process.WaitForExit(TimeSpan.FromMinutes(5)))
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException("the Python reference did not finish in 5 minutes");
        }
        if (process.ExitCode != 0)
            throw new InvalidOperationException($"the Python reference failed (exit {process.ExitCode}; python3-sklearn and umap-learn are needed):\n{stderr.Result}");
        return stdout;
    }

    /// <summary>Writes <paramref name="values"/> as raw little-endian float32 (numpy: <c>np.fromfile(path, np.float32)</c>).</summary>
    public static void WriteFloats(string path, float[] values) => File.WriteAllBytes(path, MemoryMarshal.AsBytes(values.AsSpan()).ToArray());

    /// <summary>Reads raw little-endian float32 values written by numpy's <c>tofile</c>.</summary>
    public static float[] ReadFloats(string path) => MemoryMarshal.Cast<byte, float>(File.ReadAllBytes(path)).ToArray();
}
