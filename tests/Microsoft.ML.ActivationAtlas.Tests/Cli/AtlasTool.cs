using System.Reflection;

namespace Microsoft.ML.ActivationAtlas.Tests.Cli;

/// <summary>Runs the <c>atlas</c> tool's entry point in-process, capturing what it writes to standard error.</summary>
internal static class AtlasTool
{
    private static readonly MethodInfo s_main =
        Type.GetType("Microsoft.ML.ActivationAtlas.Cli.Program, atlas", throwOnError: true)!
            .GetMethod("Main", BindingFlags.Static | BindingFlags.NonPublic | BindingFlags.Public)!;

    private static readonly object s_console = new();

    public static (int ExitCode, string Error) Run(params string[] args)
    {
        lock (s_console)
        {
            var previous = Console.Error;
            var capture = new StringWriter();
            Console.SetError(capture);
            try
            {
                int code = (int)s_main.Invoke(null, [args])!;
                return (code, capture.ToString());
            }
            finally
            {
                Console.SetError(previous);
            }
        }
    }
}
