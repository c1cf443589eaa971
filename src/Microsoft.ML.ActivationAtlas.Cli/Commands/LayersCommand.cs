using Microsoft.ML.ActivationAtlas.Onnx;

namespace Microsoft.ML.ActivationAtlas.Cli.Commands;

/// <summary><c>atlas layers</c>: the layers of a network that activations can be extracted from.</summary>
internal sealed class LayersCommand : ICommand
{
    public string Name => "layers";

    public string Summary => "list the layers of a network: spatial [C, H, W] and ViT token layers [T, C] (name, friendly name, op, shape)";

    public string Usage =>
        "usage: atlas layers --model <file.onnx|resnet18> [--all] [--token-layout ntc|nct] [--class-tokens <k>] [--register-tokens <r>]\n" +
        "  --model <file.onnx|resnet18>   the network\n" +
        "  --all                          list every tensor, not only the selectable spatial and token layers\n" +
        ModelArguments.TokenUsage +
        "Token layers [N, T, C] (class token first, then the patch grid) show their grid, e.g. \"tokens 1+8x8\"\n" +
        "(leading class + register tokens, then the G x G patches); the layout used is printed first.\n";

    public int Run(CommandArgs args, CancellationToken cancellationToken)
    {
        var model = ModelArguments.Model(args);
        bool all = args.Has("all");
        var tokens = ModelArguments.Tokens(args) ?? TokenLayout.Default;
        args.RejectUnknown();
        var tensors = OnnxLayers.Probe(model.Network, tokens: tokens);
        var shown = all ? tensors : tensors.Where(t => t.IsSelectable).ToList();
        int nameWidth = Math.Max(5, shown.Select(t => t.Name.Length).DefaultIfEmpty(0).Max());
        int friendlyWidth = Math.Max(8, shown.Select(t => t.FriendlyName?.Length ?? 0).DefaultIfEmpty(0).Max());
        Console.WriteLine($"{model.Description}: {shown.Count} {(all ? "tensors" : "selectable layers ([C, H, W] or tokens [T, C])")}; token layout {tokens}");
        Console.WriteLine($"{"layer".PadRight(nameWidth)}  {"friendly".PadRight(friendlyWidth)}  {"op",-18} shape");
        foreach (var t in shown)
            Console.WriteLine($"{t.Name.PadRight(nameWidth)}  {(t.FriendlyName ?? "-").PadRight(friendlyWidth)}  {t.OpType,-18} {(t.IsSelectable ? t.ShapeText : "[" + string.Join(", ", t.Shape) + "] " + t.ElementType)}");
        return 0;
    }
}
