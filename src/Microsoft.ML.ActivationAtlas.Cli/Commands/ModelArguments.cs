using System.Globalization;
using Microsoft.ML.ActivationAtlas.Extraction;
using Microsoft.ML.ActivationAtlas.Onnx;

namespace Microsoft.ML.ActivationAtlas.Cli.Commands;

/// <summary>The options that pick a network and its preprocessing, shared by the verbs that run one.</summary>
internal static class ModelArguments
{
    public const string Usage =
        "  --model <file.onnx|resnet18>   the network (resnet18 = the built-in ImageNet ResNet18)\n" +
        "  --preprocess <name>            unit ([0,1], default for files) | imagenet | inception ([-117,138]) | identity (0..255)\n" +
        "  --prep-model <file.onnx>       an ONNX preprocessing model run before the network\n" +
        "  --mean r,g,b  --std r,g,b      per-channel mean/std (after scaling to the range)\n" +
        "  --range min,max                the values pixel 0 and 255 map to\n" +
        "  --bgr                          the network takes BGR channels\n" +
        "  --interleaved                  the network takes [N,H,W,C] input\n" +
        "  --threads <n>                  ONNX Runtime intra-op threads (default: one per physical core)\n" +
        "  --cuda [--device <id>]         run on CUDA (Gpu build), falling back to the CPU with a warning\n";

    /// <summary>The token-layout options of the verbs that take a layer (TokenLayout's properties).</summary>
    public const string TokenUsage =
        "  --token-layout <ntc|nct>       a vision transformer's token layers: [N, T, C] (default, torchvision/timm) or\n" +
        "                                 [N, C, T] (TokenLayout.ChannelsFirst)\n" +
        "  --class-tokens <k>             class tokens before the patch grid (default 1; 0 for a model without one)\n" +
        "  --register-tokens <r>          register tokens after the class tokens (default 0; 4 for DINOv2 with registers)\n";

    /// <summary>The token-layout options by name, as errors about them name them.</summary>
    public const string TokenOptions = "--token-layout/--class-tokens/--register-tokens";

    /// <summary>
    /// The token layout of <see cref="TokenUsage"/>'s options, or null when none is given (the library's
    /// <see cref="TokenLayout.Default"/>).
    /// </summary>
    public static TokenLayout? Tokens(CommandArgs args)
    {
        string? layout = args.Optional("token-layout");
        bool any = layout is not null | args.Has("class-tokens") | args.Has("register-tokens");
        bool channelsFirst = layout switch
        {
            null or "ntc" => false,
            "nct" => true,
            _ => throw new UsageException($"option --token-layout: '{layout}' is neither 'ntc' ([N, T, C]) nor 'nct' ([N, C, T])"),
        };
        int classTokens = Count(args, "class-tokens", TokenLayout.Default.ClassTokens);
        int registerTokens = Count(args, "register-tokens", TokenLayout.Default.RegisterTokens);
        return any ? new TokenLayout { ChannelsFirst = channelsFirst, ClassTokens = classTokens, RegisterTokens = registerTokens } : null;
    }

    private static int Count(CommandArgs args, string option, int fallback)
    {
        if (args.Has(option) && args.Optional(option) is null)
            throw new UsageException($"option --{option}: give a count");
        int value = args.Int(option, fallback);
        if (value < 0)
            throw new UsageException($"option --{option}: {value} is negative; give 0 or more tokens");
        return value;
    }

    public static ActivationModel Model(CommandArgs args)
    {
        string model = args.Required("model");
        var preprocessing = Preprocessing(args);
        string? prep = args.Optional("prep-model");
        var builtIn = PretrainedModels.ByName(model);
        if (builtIn is not null)
        {
            if (prep is not null)
                throw new UsageException("--prep-model cannot be combined with the built-in model");
            return preprocessing is null ? builtIn
                : ActivationModel.FromFile(builtIn.NetworkPath!, preprocessing, builtIn.PreprocessingModelPath);
        }
        if (!File.Exists(model))
            throw new UsageException($"--model: '{model}' is neither an existing .onnx file nor a built-in model (resnet18)");
        return ActivationModel.FromFile(model, preprocessing, prep);
    }

    public static OnnxSessionOptions Session(CommandArgs args) => new()
    {
        IntraOpThreads = args.Int("threads", 0, minimum: 0),
        UseCuda = args.Has("cuda"),
        GpuDeviceId = args.Int("device", 0, minimum: 0),
        Warning = m => Console.Error.WriteLine("atlas: " + m),
    };

    private static ImagePreprocessing? Preprocessing(CommandArgs args)
    {
        string? name = args.Optional("preprocess");
        ImagePreprocessing? p = name switch
        {
            null => null,
            "unit" => ImagePreprocessing.UnitRange,
            "imagenet" => ImagePreprocessing.ImageNet,
            "inception" => ImagePreprocessing.InceptionV1,
            "identity" => ImagePreprocessing.Identity,
            _ => throw new UsageException($"--preprocess: unknown '{name}' (unit, imagenet, inception, identity)"),
        };
        string? mean = args.Optional("mean"), std = args.Optional("std"), range = args.Optional("range");
        bool bgr = args.Has("bgr"), interleaved = args.Has("interleaved");
        if (p is null && mean is null && std is null && range is null && !bgr && !interleaved)
            return null;
        p ??= ImagePreprocessing.UnitRange;
        if (mean is not null) p.Mean = Floats("mean", mean, 3);
        if (std is not null) p.Std = Floats("std", std, 3);
        if (range is not null)
        {
            var r = Floats("range", range, 2);
            (p.RangeMin, p.RangeMax) = (r[0], r[1]);
        }
        if (bgr) p.ChannelOrder = ChannelOrder.Bgr;
        if (interleaved) p.Planar = false;
        return p;
    }

    private static float[] Floats(string option, string text, int count)
    {
        var parts = text.Split(',', StringSplitOptions.TrimEntries);
        if (parts.Length != count || !parts.All(s => float.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out _)))
            throw new UsageException($"--{option}: '{text}' must be {count} comma-separated numbers");
        return parts.Select(s => float.Parse(s, CultureInfo.InvariantCulture)).ToArray();
    }
}
