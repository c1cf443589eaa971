using System.Globalization;
using System.Text.Json;
using Microsoft.ML.ActivationAtlas.Gradients;

namespace Microsoft.ML.ActivationAtlas.Benchmarks;

/// <summary>
/// <c>gradcheck --fixture DIR</c>: builds the reverse- and forward-mode graphs of a fixture's model and compares
/// them with its float64 references.
/// </summary>
internal sealed class GradCheckBenchmark : IBenchmark
{
    public string Name => "gradcheck";

    public string Description => "gradient graphs vs a fixture's references: --fixture <dir> [--double (float64 evaluation)]";

    public int Run(string[] args)
    {
        var a = new BenchmarkArgs(args);
        if (!a.Has("fixture"))
        {
            Console.Error.WriteLine("gradcheck: --fixture <dir> is required (a folder with model.onnx, meta.json and the .pb references).");
            return 2;
        }
        string folder = a.Get("fixture", "");
        bool precise = a.Has("double");
        var result = GradientFixtureCheck.Run(folder, doublePrecision: precise);
        Console.WriteLine($"layer value max rel err {result.LayerMaxRelativeError.ToString("E2", CultureInfo.InvariantCulture)}");
        Console.WriteLine(JsonSerializer.Serialize(new Dictionary<string, object?>
        {
            ["benchmark"] = "gradcheck",
            ["model"] = result.Model,
            ["precision"] = precise ? "float64" : "float32",
            ["vjp_max_rel_err"] = double.IsNaN(result.VjpMaxRelativeError) ? null : result.VjpMaxRelativeError,
            ["attribution_max_rel_err"] = double.IsNaN(result.AttributionMaxRelativeError) ? null : result.AttributionMaxRelativeError,
            ["unsupported_ops"] = result.UnsupportedOperators,
        }));
        return 0;
    }
}
