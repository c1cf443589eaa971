using System.Reflection;

namespace Microsoft.ML.ActivationAtlas.Tests.Cli;

/// <summary>Runs the <c>atlas</c> tool's entry point in-process, capturing what it writes to standard error.</summary>
internal static class AtlasTool
{
    private static readonly MethodInfo s_main =
        Type.GetType("Microsoft.ML.ActivationAtlas.Cli.Program, atlas", throwOnError: true)!
            .GetMethod("Main", BindingFlags.Static | BindingFlags.NonPublic | BindingFlags.Public)!;

    private static readonly object s_console = new();

    /// <summary>
    /// Runs the tool as a separate process (<c>dotnet atlas.dll ...</c>), so nothing is shared with this process:
    /// no loaded assemblies, no caches, no MLContext.
    /// </summary>
    public static (int ExitCode, string Error) RunInNewProcess(params string[] args)
    {
        var start = new System.Diagnostics.ProcessStartInfo("dotnet")
        {
            RedirectStandardError = true,
            RedirectStandardOutput = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "atlas.dll"));
        foreach (var a in args)
            start.ArgumentList.Add(a);
        using var process = System.Diagnostics.Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        string error = process.StandardError.ReadToEnd();
        if (!process.WaitForExit(TimeSpan.FromMinutes(5)))
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException("atlas " + string.Join(' ', args) + " did not finish in 5 minutes");
        }
        stdout.Wait();
        return (process.ExitCode, error);
    }

    public static (int ExitCode, string Error) Run(params string[] args) => Run(args, captureOutput: false);

    /// <summary>Runs the tool in-process, capturing standard output and standard error together.</summary>
    public static (int ExitCode, string Output) RunWithOutput(params string[] args) => Run(args, captureOutput: true);

    private static (int ExitCode, string Text) Run(string[] args, bool captureOutput)
    {
        lock (s_console)
        {
            var previous = Console.Error;
            var previousOut = Console.Out;
            var capture = new StringWriter();
            Console.SetError(capture);
            if (captureOutput)
                Console.SetOut(capture);
            try
            {
                int code = (int)s_main.Invoke(null, [args])!;
                return (code, capture.ToString());
            }
            finally
            {
                Console.SetError(previous);
                Console.SetOut(previousOut);
            }
        }
    }
}
