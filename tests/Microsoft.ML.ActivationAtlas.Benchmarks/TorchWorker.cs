using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;

namespace Microsoft.ML.ActivationAtlas.Benchmarks;

/// <summary>
/// The PyTorch side of a comparison as a long-lived process: a script of Python/ (run with /usr/bin/python3) that sets
/// itself up (network, agreement check, warm-up), prints one JSON line (<see cref="Info"/>), then answers each command
/// written to its stdin with one JSON line. Between commands it waits on stdin, so rounds of both sides can alternate
/// without running at the same time. Its stderr (progress, checks) is copied to ours.
/// </summary>
internal sealed class TorchWorker : IDisposable
{
    private readonly Process _process;
    private readonly string _script;

    private TorchWorker(string script, Comparison.Settings settings, IEnumerable<object> args)
    {
        _script = script;
        var psi = new ProcessStartInfo("/usr/bin/python3")
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        psi.ArgumentList.Add("-u");
        psi.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "Python", script));
        foreach (var arg in args)
            psi.ArgumentList.Add(Convert.ToString(arg, CultureInfo.InvariantCulture)!);
        // The BLAS and OpenMP pools of numpy and torch get the same thread count as torch.set_num_threads (the script
        // gets it as --threads), and idle OpenMP threads wait as ONNX Runtime's do.
        string t = settings.Threads.ToString(CultureInfo.InvariantCulture);
        foreach (var name in new[] { "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS" })
            psi.Environment[name] = t;
        psi.Environment["OMP_WAIT_POLICY"] = settings.WaitPolicy;
        psi.ArgumentList.Add("--threads");
        psi.ArgumentList.Add(t);
        try
        {
            _process = Process.Start(psi)!;
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new InvalidOperationException("/usr/bin/python3 could not be started; PyTorch's side needs python3-torch and python3-torchvision, or pass --no-torch.", e);
        }
        _process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is not null)
                Console.Error.WriteLine($"  [torch] {e.Data}");
        };
        _process.BeginErrorReadLine();
        Info = ReadLine("setup");
    }

    /// <summary>What the script printed after its setup (versions, configuration, checks, FLOPs, peak).</summary>
    public JsonObject Info { get; }

    /// <summary>Starts Python/<paramref name="script"/> with <c>--threads</c> and <paramref name="args"/>, and waits for its setup line.</summary>
    public static TorchWorker Start(string script, Comparison.Settings settings, params object[] args) => new(script, settings, args);

    /// <summary>Runs one command (e.g. one timed round) and returns its JSON answer.</summary>
    public JsonObject Run(string command)
    {
        _process.StandardInput.WriteLine(command);
        _process.StandardInput.Flush();
        return ReadLine(command);
    }

    private JsonObject ReadLine(string what)
    {
        string? line = _process.StandardOutput.ReadLine();
        if (line is null)
        {
            _process.WaitForExit();
            throw new InvalidOperationException($"{_script} ended during '{what}' (exit code {_process.ExitCode}); its messages are above.");
        }
        return JsonNode.Parse(line)!.AsObject();
    }

    public void Dispose()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.StandardInput.WriteLine("quit");
                _process.StandardInput.Close();
                if (!_process.WaitForExit(10_000))
                    _process.Kill();
            }
        }
        catch (IOException)
        {
            // The script already closed its end.
        }
        _process.Dispose();
    }
}
