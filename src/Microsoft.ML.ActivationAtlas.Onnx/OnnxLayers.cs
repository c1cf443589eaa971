using Microsoft.ML.ActivationAtlas.Onnx.Protobuf;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace Microsoft.ML.ActivationAtlas.Onnx;

/// <summary>
/// Finds the layers a user can pick: one probe run of the model with every tensor exposed as an output gives each
/// tensor's producing op, element type and shape; the 4-D float ones (spatial layers) and the 3-D float ones whose
/// tokens fit a <see cref="TokenLayout"/> (vision-transformer token layers) are the selectable layers.
/// </summary>
public static class OnnxLayers
{
    /// <summary>
    /// Runs the model once on a zero input with every node output exposed and describes each tensor it produced,
    /// in graph order.
    /// </summary>
    /// <param name="model">The model.</param>
    /// <param name="inputShapes">Shapes for inputs whose declared shape has symbolic dimensions other than the batch; a
    /// 4-D input with unknown spatial size defaults to 224 x 224.</param>
    /// <param name="options">Session options for the probe; null for CPU defaults.</param>
    /// <param name="tokens">How token layers are laid out; null for <see cref="TokenLayout.Default"/> ([N, T, C], class token first).</param>
    public static IReadOnlyList<OnnxLayerInfo> Probe(ModelProto model, IReadOnlyDictionary<string, long[]>? inputShapes = null,
        OnnxSessionOptions? options = null, TokenLayout? tokens = null)
    {
        tokens ??= TokenLayout.Default;
        ArgumentNullException.ThrowIfNull(model);
        var g = model.Graph;
        var nodeOf = new Dictionary<string, (NodeProto Node, int Order)>(StringComparer.Ordinal);
        for (int i = 0; i < g.Node.Count; i++)
            foreach (var o in g.Node[i].Output)
                if (o.Length > 0 && !nodeOf.ContainsKey(o))
                    nodeOf[o] = (g.Node[i], i);
        var exposed = nodeOf.Where(kv => kv.Value.Node.OpType != "Constant").Select(kv => kv.Key).ToList();
        var probeModel = OnnxGraphSurgery.ExposeOutputs(model, exposed);

        using var session = OnnxSessionFactory.Create(probeModel, options);
        var inputNames = new List<string>();
        var inputValues = new List<OrtValue>();
        try
        {
            foreach (var (name, meta) in session.InputMetadata)
            {
                if (meta.ElementDataType != TensorElementType.Float)
                    throw new NotSupportedException($"Input '{name}' has element type {meta.ElementDataType}; only float inputs can be probed.");
                long[] shape = ProbeShape(name, meta.Dimensions, inputShapes);
                inputNames.Add(name);
                inputValues.Add(OrtValue.CreateTensorValueFromMemory(new float[OnnxTensors.ElementCount(shape)], shape));
            }
            var outputNames = session.OutputMetadata.Keys.Where(nodeOf.ContainsKey).ToList();
            using var runOptions = new RunOptions();
            using var results = session.Run(runOptions, inputNames, inputValues, outputNames);
            var layers = new List<OnnxLayerInfo>(outputNames.Count);
            for (int i = 0; i < outputNames.Count; i++)
            {
                var value = results.ElementAt(i);
                if (!value.IsTensor)
                    continue;
                var info = value.GetTensorTypeAndShape();
                var (node, order) = nodeOf[outputNames[i]];
                layers.Add(new OnnxLayerInfo(outputNames[i], null, node.OpType, node.Name, info.ElementDataType, info.Shape, order)
                {
                    Tokens = tokens.GridSide(info.Shape) > 0 ? tokens : null,
                });
            }
            layers.Sort((a, b) => a.Order.CompareTo(b.Order));
            return AssignFriendlyNames(layers);
        }
        finally
        {
            foreach (var v in inputValues)
                v.Dispose();
        }
    }

    /// <summary>The selectable layers (spatial and token layers) of a model, with shapes from one probe run.</summary>
    /// <param name="model">The model.</param>
    /// <param name="inputShapes">See <see cref="Probe"/>.</param>
    /// <param name="options">Session options for the probe.</param>
    /// <param name="tokens">See <see cref="Probe"/>.</param>
    public static IReadOnlyList<OnnxLayerInfo> List(ModelProto model, IReadOnlyDictionary<string, long[]>? inputShapes = null,
        OnnxSessionOptions? options = null, TokenLayout? tokens = null) =>
        Probe(model, inputShapes, options, tokens).Where(l => l.IsSelectable).ToList();

    /// <summary>
    /// Finds a layer by tensor name or friendly name (exact first, then ignoring case).
    /// </summary>
    /// <param name="tensors">All tensors from <see cref="Probe"/>.</param>
    /// <param name="name">The requested layer.</param>
    /// <param name="tokens">The token layout <paramref name="tensors"/> were probed with, named in the error for a 3-D
    /// tensor that does not fit it; null for <see cref="TokenLayout.Default"/>.</param>
    /// <exception cref="ArgumentException">No such tensor (the message lists the closest layer names), or the tensor is
    /// neither a spatial layer nor a token layer.</exception>
    public static OnnxLayerInfo Resolve(IReadOnlyList<OnnxLayerInfo> tensors, string name, TokenLayout? tokens = null)
    {
        ArgumentNullException.ThrowIfNull(tensors);
        ArgumentException.ThrowIfNullOrEmpty(name);
        var hit = tensors.FirstOrDefault(t => t.Name == name)
            ?? tensors.FirstOrDefault(t => t.FriendlyName == name)
            ?? tensors.FirstOrDefault(t => string.Equals(t.Name, name, StringComparison.OrdinalIgnoreCase))
            ?? tensors.FirstOrDefault(t => string.Equals(t.FriendlyName, name, StringComparison.OrdinalIgnoreCase));
        tokens ??= TokenLayout.Default;
        if (hit is null)
        {
            var closest = Closest(tensors.Where(t => t.IsSelectable), name, 5);
            // Friendly names go to selectable layers: a token layer read with a layout it does not fit has none.
            bool otherLayout = tokens != TokenLayout.Default;
            throw new ArgumentException(
                $"The model has no layer '{name}'. Closest layers: {string.Join(", ", closest)}. " +
                "(List all layers with 'atlas layers --model <model>'.)" +
                (otherLayout ? $" Token layers were read with the token layout {tokens}; a tensor that does not fit it is no layer and has no friendly name." : ""),
                otherLayout ? nameof(tokens) : nameof(name));
        }
        if (!hit.IsSelectable && hit.ElementType == TensorElementType.Float && hit.Shape.Length == 3 && tokens.Mismatch(hit.Shape) is { } why)
            throw new ArgumentException(
                $"Layer '{name}' ({hit.OpType} output) does not fit the token layout {tokens}: {why}. " +
                "Set the token layout ([N, T, C] or [N, C, T], class and register tokens) to the model's.", nameof(tokens));
        if (!hit.IsSelectable)
            throw new ArgumentException(
                $"Layer '{name}' ({hit.OpType} output) is a {hit.Shape.Length}-D {hit.ElementType} tensor [{string.Join(", ", hit.Shape)}]; " +
                "it is neither a spatial layer (a 4-D float tensor [N, C, H, W]) nor a token layer (a 3-D float tensor [N, T, C] " +
                "whose T tokens are the class token then a square grid of patch tokens; set the token layout for [N, C, T] " +
                "or register tokens).");
        return hit;
    }

    /// <summary>The names among <paramref name="layers"/> (tensor or friendly) closest to <paramref name="name"/> by edit distance.</summary>
    /// <param name="layers">Candidate layers.</param>
    /// <param name="name">The misspelt name.</param>
    /// <param name="count">How many to return.</param>
    public static IReadOnlyList<string> Closest(IEnumerable<OnnxLayerInfo> layers, string name, int count)
    {
        var candidates = layers.SelectMany(l => l.FriendlyName is null ? [l.Name] : new[] { l.Name, l.FriendlyName }).Distinct();
        string lower = name.ToLowerInvariant();
        return candidates
            .Select(c => (Name: c, Distance: EditDistance(lower, c.ToLowerInvariant()) - (c.Contains(name, StringComparison.OrdinalIgnoreCase) ? 100 : 0)))
            .OrderBy(c => c.Distance).ThenBy(c => c.Name, StringComparer.Ordinal)
            .Take(count).Select(c => c.Name).ToList();
    }

    private static long[] ProbeShape(string name, int[] declared, IReadOnlyDictionary<string, long[]>? inputShapes)
    {
        if (inputShapes is not null && inputShapes.TryGetValue(name, out var given))
            return given;
        var shape = new long[declared.Length];
        for (int i = 0; i < declared.Length; i++)
        {
            if (declared[i] > 0)
                shape[i] = declared[i];
            else if (i == 0)
                shape[i] = 1;
            else if (declared.Length == 4 && i >= 2)
                shape[i] = 224;
            else
                throw new ArgumentException($"Input '{name}' has a symbolic dimension {i}; pass its probe shape in inputShapes.", nameof(inputShapes));
        }
        return shape;
    }

    // "/m/inception4c/Concat_output_0" is the last tensor of module "m/inception4c", so it is called "inception4c".
    // A tensor that ends several nested modules takes the outermost one's name ("stage3" rather than "stage3.7");
    // a wrapper module enclosing every tensor is not a name. Where two modules share a last segment, the dotted path is used.
    private static IReadOnlyList<OnnxLayerInfo> AssignFriendlyNames(List<OnnxLayerInfo> layers)
    {
        var selectable = layers.Where(l => l.IsSelectable && l.Name.Contains('/')).ToList();
        var lastOfModule = new Dictionary<string, OnnxLayerInfo>(StringComparer.Ordinal);
        var moduleCount = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var l in selectable)
        {
            var segments = l.Name.Split('/', StringSplitOptions.RemoveEmptyEntries);
            for (int depth = 1; depth < segments.Length; depth++)
            {
                string module = string.Join('/', segments[..depth]);
                moduleCount[module] = moduleCount.GetValueOrDefault(module) + 1;
                if (!lastOfModule.TryGetValue(module, out var prev) || prev.Order <= l.Order)
                    lastOfModule[module] = l;
            }
        }
        int total = layers.Count(l => l.IsSelectable);
        var modules = lastOfModule.Keys.Where(m => moduleCount[m] < total).ToList();
        string wrapper = lastOfModule.Keys.Where(m => moduleCount[m] == total).OrderByDescending(m => m.Length).FirstOrDefault() ?? "";
        var shortCounts = modules.GroupBy(m => m.Split('/')[^1]).ToDictionary(gr => gr.Key, gr => gr.Count());
        var tensorNames = new HashSet<string>(layers.Select(l => l.Name), StringComparer.Ordinal);
        var friendly = new Dictionary<string, (string Name, int Depth)>(StringComparer.Ordinal);
        foreach (var module in modules)
        {
            var layer = lastOfModule[module];
            string shortName = module.Split('/')[^1];
            string path = wrapper.Length > 0 && module.StartsWith(wrapper + "/", StringComparison.Ordinal) ? module[(wrapper.Length + 1)..] : module;
            string chosen = shortCounts[shortName] == 1 ? shortName : path.Replace('/', '.');
            int depth = module.Count(c => c == '/');
            if (tensorNames.Contains(chosen))
                continue;
            if (!friendly.TryGetValue(layer.Name, out var existing) || depth < existing.Depth)
                friendly[layer.Name] = (chosen, depth);
        }
        return layers.Select(l => friendly.TryGetValue(l.Name, out var f) ? l with { FriendlyName = f.Name } : l).ToList();
    }

    private static int EditDistance(string a, string b)
    {
        var prev = new int[b.Length + 1];
        var cur = new int[b.Length + 1];
        for (int j = 0; j <= b.Length; j++) prev[j] = j;
        for (int i = 1; i <= a.Length; i++)
        {
            cur[0] = i;
            for (int j = 1; j <= b.Length; j++)
                cur[j] = Math.Min(Math.Min(cur[j - 1] + 1, prev[j] + 1), prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1));
            (prev, cur) = (cur, prev);
        }
        return prev[b.Length];
    }
}
