using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text.Json;
using Microsoft.ML.ActivationAtlas.Inversion.Optimization;
using Microsoft.ML.ActivationAtlas.Inversion.Parameterization;
using Microsoft.ML.ActivationAtlas.Inversion.Transforms;

namespace Microsoft.ML.ActivationAtlas.Benchmarks.Inversion;

/// <summary>
/// Where the image side of an icon step goes, without the network: for N icons of S px on one thread, the
/// <see cref="IconRenderer"/>'s per-step work in its order (parameterisation forward, drawing the transform chain, the
/// chain's forward, its adjoint, the parameterisation's backward, Adam), each part timed apart over all icons at every
/// step, its fastest step reported as its share and its microseconds per icon-step. The network's input gradient is
/// replaced by a fixed seeded gradient. Shares stay roughly meaningful on a busy machine; the absolute times do not.
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
        var workspaces = Enumerable.Range(0, icons).Select(_ => p.CreateWorkspace()).ToArray();
        var images = Enumerable.Range(0, icons).Select(_ => new float[p.ImageSize]).ToArray();
        var imageGradients = Enumerable.Range(0, icons).Select(_ => new float[p.ImageSize]).ToArray();
        var parameterGradients = Enumerable.Range(0, icons).Select(_ => new float[p.ParameterCount]).ToArray();
        var networkInput = new float[icons * inputSize];
        var networkGradient = new float[inputSize];
        var g = new Random(7);
        for (int i = 0; i < inputSize; i++)
            networkGradient[i] = (float)(g.NextDouble() - 0.5) * 1e-3f;

        // Each part for all icons in turn (the renderer's order), timed per step in this thread's CPU time where the system
        // gives it (Linux), so that a busy machine's preemptions do not count; a part's time is its fastest step.
        var best = Enumerable.Repeat(long.MaxValue, Parts.Length).ToArray();
        var timestamps = new long[Parts.Length + 1];
        void Step()
        {
            timestamps[0] = Now();
            for (int i = 0; i < icons; i++)
                p.Forward(parameters[i], images[i], workspaces[i]);
            timestamps[1] = Now();
            for (int i = 0; i < icons; i++)
                chains[i].Draw(transforms, randoms[i], size, size, input, input);
            timestamps[2] = Now();
            for (int i = 0; i < icons; i++)
                chains[i].Forward(images[i], networkInput.AsSpan(i * inputSize, inputSize));
            timestamps[3] = Now();
            for (int i = 0; i < icons; i++)
                chains[i].Adjoint(networkGradient, imageGradients[i]);
            timestamps[4] = Now();
            for (int i = 0; i < icons; i++)
            {
                Array.Clear(parameterGradients[i]);
                p.Backward(parameters[i], images[i], imageGradients[i], parameterGradients[i], workspaces[i]);
            }
            timestamps[5] = Now();
            for (int i = 0; i < icons; i++)
                adam[i].Step(parameters[i], parameterGradients[i], 0.05);
            timestamps[6] = Now();
        }
        for (int s = 0; s < 3; s++)
            Step();
        for (int s = 0; s < steps; s++)
        {
            Step();
            for (int k = 0; k < Parts.Length; k++)
                best[k] = Math.Min(best[k], timestamps[k + 1] - timestamps[k]);
        }
        var ticks = best;

        long total = ticks.Sum();
        double perIconStep = 1e6 / (ThreadClock ? 1e9 : Stopwatch.Frequency) / icons;
        var result = new Dictionary<string, object?>
        {
            ["benchmark"] = "icon-parts",
            ["icons"] = icons,
            ["size"] = size,
            ["input"] = input,
            ["steps"] = steps,
            ["transforms"] = which,
            ["basis"] = basis.ToString(),
            ["clock"] = ThreadClock ? "thread CPU time" : "wall clock",
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

    private static readonly bool ThreadClock = OperatingSystem.IsLinux() && ThreadCpuNanoseconds() > 0;

    // Ticks: nanoseconds of this thread's CPU time on Linux, else the stopwatch.
    private static long Now() => ThreadClock ? ThreadCpuNanoseconds() : Stopwatch.GetTimestamp();

    private static long ThreadCpuNanoseconds()
    {
        try
        {
            return ClockGetTime(3, out var t) == 0 ? t.Seconds * 1_000_000_000 + t.Nanoseconds : -1; // CLOCK_THREAD_CPUTIME_ID
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            return -1;
        }
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct TimeSpec
    {
        public long Seconds;
        public long Nanoseconds;
    }

    [DllImport("libc", EntryPoint = "clock_gettime")]
    private static extern int ClockGetTime(int clock, out TimeSpec time);
}
