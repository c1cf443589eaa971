using System.Globalization;
using Microsoft.ML.ActivationAtlas.Inversion.Objectives;
using Microsoft.ML.ActivationAtlas.Onnx;
using Microsoft.ML.ActivationAtlas.Onnx.Protobuf;
using static Microsoft.ML.ActivationAtlas.Onnx.OnnxAttributes;

namespace Microsoft.ML.ActivationAtlas.Inversion.Network;

/// <summary>
/// Rewrites a seeded reverse-mode graph so that its seed is computed in the graph from the layer and per-icon
/// targets: seed = d(objective)/d(layer) (the ascent convention lucid's ReLU redirection expects; the caller negates
/// the resulting gradient), the closed form of <see cref="ActivationObjective.Evaluate"/>, placed at
/// one position. The seed nodes are inserted right after the layer's producer, keeping the graph topologically sorted.
/// </summary>
internal static class ObjectiveSeedGraph
{
    public const string TargetsName = "icon_targets";

    public static bool Supports(ActivationObjective objective) =>
        objective.Custom is null && (objective.Whitening is null || objective.Whitening.Kind == WhiteningKind.SecondMomentInverse);

    public static string Key(ActivationObjective o, int position) =>
        string.Create(CultureInfo.InvariantCulture, $"{o.Kind}|{o.CosinePower:R}|{o.CosineFloor:R}|{position}");

    // The layer is [N, C, ...spatial] (spatial = [H, W], or [T] for a token layer); position indexes the flattened spatial dims.
    public static void ReplaceSeed(ModelProto model, string layer, string seedName, ActivationObjective objective, int position, IReadOnlyList<int> spatial)
    {
        if (!Supports(objective))
            throw new NotSupportedException("In-graph seeds support no whitening or second-moment whitening.");
        var graph = model.Graph;
        var seedInput = graph.Input.FirstOrDefault(i => i.Name == seedName)
            ?? throw new InvalidOperationException($"The gradient graph has no seed input '{seedName}'.");
        graph.Input.Remove(seedInput);
        graph.Input.Add(OnnxValueInfo.Float(TargetsName, "batch", objective.Channels));

        int producer = -1;
        for (int i = 0; i < graph.Node.Count && producer < 0; i++)
            if (graph.Node[i].Output.Contains(layer))
                producer = i;
        if (producer < 0)
            throw new InvalidOperationException($"No node of the gradient graph produces the layer '{layer}'.");
        int before = graph.Node.Count;

        var b = new OnnxGraphBuilder(graph, "seed__");
        string t = TargetsName;
        int plane = 1;
        foreach (int d in spatial)
            plane *= d;
        var index = new long[spatial.Count];
        for (int d = spatial.Count - 1, rest = position; d >= 0; d--)
        {
            index[d] = rest % spatial[d];
            rest /= spatial[d];
        }
        var axes = Enumerable.Range(2, spatial.Count).Select(a => (long)a).ToArray();
        string slice = b.Node("Slice", [layer, b.Vector("starts", index), b.Vector("ends", index.Select(i => i + 1).ToArray()), b.Vector("axes", axes)]);
        string a = b.Node("Flatten", [slice], Int("axis", 1));
        string axis1 = b.Vector("axis1", 1);
        string g;
        if (objective.Kind == ObjectiveKind.Direction)
        {
            g = t;
        }
        else
        {
            float n = (float)objective.CosinePower, floor = (float)objective.CosineFloor;
            string Sum(string v) => b.Node("ReduceSum", [v, axis1], Int("keepdims", 1));
            string C(string hint, float v) => b.Constant(hint, v);
            string dot = Sum(b.Node("Mul", [a, t]));
            string na = b.Node("Sqrt", [Sum(b.Node("Mul", [a, a]))]);
            string nt = b.Node("Sqrt", [Sum(b.Node("Mul", [t, t]))]);
            string den = b.Node("Add", [b.Node("Mul", [na, nt]), C("eps", 1e-4f)]);
            string cos = b.Node("Div", [dot, den]);
            string cm = b.Node("Max", [cos, C("floor", floor)]);
            string cn = b.Node("Pow", [cm, C("power", n)]);
            string k = b.Node("Mul", [b.Node("Mul", [dot, C("n", n)]), b.Node("Pow", [cm, C("power_1", n - 1)])]);
            string ct = b.Node("Add", [cn, b.Node("Div", [k, den])]);
            // ca = -k dot nt / (na den^2)
            string num = b.Node("Mul", [b.Node("Mul", [k, dot]), nt]);
            string dd = b.Node("Mul", [b.Node("Mul", [b.Node("Add", [na, C("tiny", 1e-12f)]), den]), den]);
            string ca = b.Node("Neg", [b.Node("Div", [num, dd])]);
            string high = b.Node("Add", [b.Node("Mul", [ct, t]), b.Node("Mul", [ca, a])]);
            string low = b.Node("Mul", [t, C("floor_n", MathF.Pow(floor, n))]);
            g = b.Node("Where", [b.Node("Greater", [cos, C("floor_gt", floor)]), high, low]);
        }
        string vec = b.Node("Unsqueeze", [g, b.Vector("hw", axes)]);
        var mask = new float[plane];
        mask[position] = 1f;
        string maskName = b.Initializer("position_mask", mask, [1, 1, .. spatial.Select(d => (long)d)]);
        b.NodeWithOutputs("Mul", [vec, maskName], [seedName]);

        // Move the appended nodes to just after the layer's producer.
        var added = graph.Node.Skip(before).ToList();
        for (int i = graph.Node.Count - 1; i >= before; i--)
            graph.Node.RemoveAt(i);
        for (int i = 0; i < added.Count; i++)
            graph.Node.Insert(producer + 1 + i, added[i]);
    }
}
