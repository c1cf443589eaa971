using System.Reflection;

namespace Microsoft.ML.ActivationAtlas.Benchmarks;

internal static class Program
{
    private static int Main(string[] args)
    {
        var benchmarks = typeof(Program).Assembly.GetTypes()
            .Where(t => typeof(IBenchmark).IsAssignableFrom(t) && t is { IsAbstract: false, IsInterface: false })
            .Select(t => (IBenchmark)Activator.CreateInstance(t)!)
            .OrderBy(b => b.Name, StringComparer.Ordinal)
            .ToList();

        var bench = args.Length > 0 ? benchmarks.FirstOrDefault(b => b.Name == args[0]) : null;
        if (bench is null)
        {
            Console.Error.WriteLine("usage: dotnet run -c Release --project tests/Microsoft.ML.ActivationAtlas.Benchmarks -- <benchmark> [options]");
            foreach (var b in benchmarks)
                Console.Error.WriteLine($"  {b.Name,-14} {b.Description}");
            return args.Length == 0 ? 0 : 2;
        }
        return bench.Run(args[1..]);
    }
}
