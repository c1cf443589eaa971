using System.Diagnostics;
using System.Text.Json;
using Microsoft.ML.ActivationAtlas.Inversion.Optimization;
using Microsoft.ML.ActivationAtlas.Inversion.Parameterization;
using Microsoft.ML.ActivationAtlas.Inversion.Transforms;

namespace Microsoft.ML.ActivationAtlas.Benchmarks.Inversion;

/// <summary>
/// Where the image side of an icon step goes, without the network: for N icons of S px on one thread, the
/// <see cref="IconRenderer"/>'s per-step work in its order (parameterisation forward, drawing the transform chain, the
/// chain's forward, its adjoint, the parameterisation's backward, Adam), each part timed apart, reported as its share
/// and its microseconds per icon-step. The network's input gradient is replaced by a fixed seeded gradient. Shares
/// stay meaningful on a busy machine; the absolute times do not.
/// Options: --icons 16 --size 80 --input (size rounded up to 16) --steps 32 --transforms atlas|lucid --basis fourier|pixel.
/// </summary>
internal sealed class IconPartsBenchmark : IBenchmark
{
    private static readonly string[] Parts = ["parameterization_forward", "chain_draw", "chain_forward", "chain_adjoint", "parameterization_backward", "adam"];

    public string Name => "icon-parts";

    public string Description => "feature inversion: shares of the image side of an icon step (parameterisation, transforms, adjoints, Adam), one thread, no network: [--icons 16] [--size 80] [--steps 32] [--transforms atlas|lucid] [--basis fourier|pixel]";

    public int Run(string[] args)
    {
        var a = new BenchmarkArgs(args);
        int icons = a.Get("icons", 16), size = a.Get("size", 80), steps = a.Get("steps", 32);
        int input = a.Get("input", (size + 15) / 16 * 16);
        string which = a.Get("transforms", "atlas");
        var transforms = which switch
        {
            "atlas" => RobustnessTransforms.Atlas(size),
            "lucid" => RobustnessTransforms.LucidStandard(size),
            _ => throw new ArgumentException($"--transforms {which} is not atlas or lucid."),
        };
        var basis = a.Get("basis", "fourier") == "pixel" ? ImageBasis.Pixel : ImageBasis.Fourier;
        var p = new ImageParameterization(size, size, basis);
        int inputSize = 3 * input * input;
        var parameters = new float[icons][];
        var adam = new AdamOptimizer[icons];
        var chains = new TransformChain[icons];
        var randoms = new Random[icons];
        var init = new Random(5);
        for (int i = 0; i < icons; i++)
        {
            parameters[i] = new float[p.ParameterCount];
            p.Initialize(parameters[i], init);
            adam[i] = new AdamOptimizer(p.ParameterCount, 0.05);
            chains[i] = new TransformChain();
            randoms[i] = new Random(100 + i);
        }
        var workspace = p.CreateWorkspace();
        var image = new float[p.ImageSize];
        var imageGradient = new float[p.ImageSize];
        var parameterGradient = new float[p.ParameterCount];
        var networkInput = new float[inputSize];
        var networkGradient = new float[inputSize];
        var g = new Random(7);
        for (int i = 0; i < inputSize; i++)
            networkGradient[i] = (float)(g.NextDouble() - 0.5) * 1e-3f;

        var ticks = new long[Parts.Length];
        void Step(bool timed)
        {
            for (int i = 0; i < icons; i++)
            {
                long t0 = Stopwatch.GetTimestamp();
                p.Forward(parameters[i], image, workspace);
                long t1 = Stopwatch.GetTimestamp();
                chains[i].Draw(transforms, randoms[i], size, size, input, input);
                long t2 = Stopwatch.GetTimestamp();
                chains[i].Forward(image, networkInput);
                long t3 = Stopwatch.GetTimestamp();
                chains[i].Adjoint(networkGradient, imageGradient);
                long t4 = Stopwatch.GetTimestamp();
                Array.Clear(parameterGradient);
                p.Backward(parameters[i], image, imageGradient, parameterGradient, workspace);
                long t5 = Stopwatch.GetTimestamp();
                adam[i].Step(parameters[i], parameterGradient, 0.05);
                long t6 = Stopwatch.GetTimestamp();
                if (timed)
                {
                    ticks[0] += t1 - t0; ticks[1] += t2 - t1; ticks[2] += t3 - t2;
                    ticks[3] += t4 - t3; ticks[4] += t5 - t4; ticks[5] += t6 - t5;
                }
            }
        }
        for (int s = 0; s < 3; s++)
            Step(false);
        for (int s = 0; s < steps; s++)
            Step(true);

        long total = ticks.Sum();
        double perIconStep = 1e6 / Stopwatch.Frequency / (icons * steps);
        var result = new Dictionary<string, object?>
        {
            ["benchmark"] = "icon-parts",
            ["icons"] = icons,
            ["size"] = size,
            ["input"] = input,
            ["steps"] = steps,
            ["transforms"] = which,
            ["basis"] = basis.ToString(),
            ["us_per_icon_step"] = Math.Round(total * perIconStep, 1),
        };
        Console.Error.WriteLine($"icon-parts: {icons} icons of {size} px (network input {input}), {which} transforms, {basis} basis, one thread: {total * perIconStep:F0} us per icon-step");
        for (int k = 0; k < Parts.Length; k++)
        {
            double share = (double)ticks[k] / total;
            Console.Error.WriteLine($"  {Parts[k],-26} {share,6:P1} {ticks[k] * perIconStep,8:F1} us");
            result[Parts[k] + "_share"] = Math.Round(share, 4);
            result[Parts[k] + "_us"] = Math.Round(ticks[k] * perIconStep, 1);
        }
        Console.WriteLine(JsonSerializer.Serialize(result));
        return 0;
    }
}
