using Microsoft.ML.ActivationAtlas.Cli.Commands;

namespace Microsoft.ML.ActivationAtlas.Cli;

internal static class Program
{
    private static int Main(string[] args)
    {
        var commands = typeof(Program).Assembly.GetTypes()
            .Where(t => typeof(ICommand).IsAssignableFrom(t) && t is { IsAbstract: false, IsInterface: false })
            .Select(t => (ICommand)Activator.CreateInstance(t)!)
            .OrderBy(c => c.Name, StringComparer.Ordinal)
            .ToList();

        if (args.Length == 0 || args[0] is "-h" or "--help" or "help")
        {
            Console.WriteLine("atlas: activation atlases of ONNX vision models");
            Console.WriteLine();
            Console.WriteLine("usage: atlas <command> [options]   (atlas <command> --help for its options)");
            foreach (var c in commands)
                Console.WriteLine($"  {c.Name,-10} {c.Summary}");
            return args.Length == 0 ? 2 : 0;
        }

        var command = commands.FirstOrDefault(c => c.Name == args[0]);
        if (command is null)
        {
            Console.Error.WriteLine($"atlas: unknown command '{args[0]}'. Commands: {string.Join(", ", commands.Select(c => c.Name))}.");
            return 2;
        }
        if (args.Skip(1).Any(a => a is "-h" or "--help"))
        {
            Console.WriteLine(command.Usage);
            return 0;
        }

        using var cts = new CancellationTokenSource();
        Console.CancelKeyPress += (_, e) =>
        {
            e.Cancel = true;
            cts.Cancel();
            Console.Error.WriteLine("atlas: cancelling...");
        };
        try
        {
            return command.Run(new CommandArgs(args[1..]), cts.Token);
        }
        catch (UsageException e)
        {
            Console.Error.WriteLine($"atlas {command.Name}: {e.Message}");
            Console.Error.WriteLine(command.Usage);
            return 2;
        }
        catch (OperationCanceledException)
        {
            Console.Error.WriteLine($"atlas {command.Name}: cancelled; nothing was written.");
            return 130;
        }
        catch (ArgumentException e) when (e.ParamName == "tokens")
        {
            // A layer that does not fit the token layout: the library names the layer, the options are the CLI's.
            Console.Error.WriteLine($"atlas {command.Name}: error: options {ModelArguments.TokenOptions}: {e.Message}");
            return 1;
        }
        catch (Exception e) when (e is IOException or InvalidDataException or InvalidOperationException or ArgumentException or UnauthorizedAccessException or FormatException)
        {
            Console.Error.WriteLine($"atlas {command.Name}: error: {e.Message}");
            return 1;
        }
    }
}
