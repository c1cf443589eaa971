using Microsoft.ML.ActivationAtlas.Gradients.Rules;
using Microsoft.ML.ActivationAtlas.Onnx.Protobuf;

namespace Microsoft.ML.ActivationAtlas.Gradients.Internal;

/// <summary>Which tensors depend on the differentiation point, and which nodes lie between it and the targets.</summary>
internal static class GraphAnalysis
{
    /// <summary>Checks that a tensor is a graph input or produced by a node; the message names the model's tensors.</summary>
    public static void RequireTensor(GraphProto graph, string tensor, string role)
    {
        if (string.IsNullOrEmpty(tensor))
            throw new ArgumentException($"The {role} tensor is not set.");
        if (graph.Input.Any(i => i.Name == tensor) || graph.Node.Any(n => n.Output.Contains(tensor)))
            return;
        throw new ArgumentException($"The {role} tensor '{tensor}' is neither an input of the model nor produced by any of its nodes.");
    }

    /// <summary>Tensors that depend differentiably on <paramref name="point"/>.</summary>
    public static HashSet<string> Active(GraphProto graph, string point)
    {
        var active = new HashSet<string>(StringComparer.Ordinal) { point };
        foreach (var node in graph.Node)
        {
            if (!node.Input.Any(i => i.Length > 0 && active.Contains(i)) || !IsDifferentiable(node))
                continue;
            // Only the first output of MaxPool (values), Dropout and the normalizations carries a derivative.
            int count = node.OpType is "MaxPool" or "Dropout" or "BatchNormalization" or "LayerNormalization" ? 1 : node.Output.Count;
            for (int i = 0; i < count; i++)
                if (node.Output[i].Length > 0)
                    active.Add(node.Output[i]);
        }
        return active;
    }

    private static bool IsDifferentiable(NodeProto node)
    {
        if (RuleTable.NonDifferentiable.Contains(node.OpType))
            return false;
        if (node.OpType == "Cast")
        {
            long to = Onnx.OnnxAttributes.GetInt(node, "to", 0);
            return to is (long)TensorProto.Types.DataType.Float or (long)TensorProto.Types.DataType.Double or (long)TensorProto.Types.DataType.Float16;
        }
        return true;
    }

    /// <summary>Active nodes through which some target depends on the point, in graph order.</summary>
    public static List<NodeProto> Between(GraphProto graph, ISet<string> active, IEnumerable<string> targets)
    {
        var relevant = new HashSet<string>(targets, StringComparer.Ordinal);
        var nodes = new List<NodeProto>();
        for (int k = graph.Node.Count - 1; k >= 0; k--)
        {
            var node = graph.Node[k];
            if (!node.Output.Any(o => o.Length > 0 && relevant.Contains(o) && active.Contains(o)))
                continue;
            bool any = false;
            foreach (var input in node.Input)
                if (input.Length > 0 && active.Contains(input))
                {
                    relevant.Add(input);
                    any = true;
                }
            if (any)
                nodes.Add(node);
        }
        nodes.Reverse();
        return nodes;
    }

    /// <summary>Removes nodes, initializers, inputs and value infos that no output needs.</summary>
    public static void Prune(GraphProto graph, IEnumerable<string> keepInputs)
    {
        var needed = new HashSet<string>(graph.Output.Select(o => o.Name), StringComparer.Ordinal);
        var kept = new List<NodeProto>();
        for (int k = graph.Node.Count - 1; k >= 0; k--)
        {
            var node = graph.Node[k];
            if (!node.Output.Any(o => o.Length > 0 && needed.Contains(o)))
                continue;
            kept.Add(node);
            foreach (var i in node.Input)
                if (i.Length > 0) needed.Add(i);
        }
        kept.Reverse();
        graph.Node.Clear();
        graph.Node.AddRange(kept);

        var keepSet = new HashSet<string>(keepInputs, StringComparer.Ordinal);
        var inputs = graph.Input.Where(i => needed.Contains(i.Name) || keepSet.Contains(i.Name)).ToList();
        graph.Input.Clear();
        graph.Input.AddRange(inputs);
        var initializers = graph.Initializer.Where(t => needed.Contains(t.Name)).ToList();
        graph.Initializer.Clear();
        graph.Initializer.AddRange(initializers);
        var infos = graph.ValueInfo.Where(v => needed.Contains(v.Name)).ToList();
        graph.ValueInfo.Clear();
        graph.ValueInfo.AddRange(infos);
    }

    /// <summary>How many node inputs read each tensor.</summary>
    public static Dictionary<string, int> UseCounts(GraphProto graph)
    {
        var uses = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var node in graph.Node)
            foreach (var i in node.Input)
                if (i.Length > 0)
                    uses[i] = uses.GetValueOrDefault(i) + 1;
        return uses;
    }

    /// <summary>The node producing each tensor.</summary>
    public static Dictionary<string, NodeProto> Producers(GraphProto graph)
    {
        var producers = new Dictionary<string, NodeProto>(StringComparer.Ordinal);
        foreach (var node in graph.Node)
            foreach (var o in node.Output)
                if (o.Length > 0)
                    producers[o] = node;
        return producers;
    }

    /// <summary><paramref name="keep"/> and the graph's outputs: tensors a rewrite must leave where they are.</summary>
    public static HashSet<string> KeptTensors(GraphProto graph, IEnumerable<string> keep)
    {
        var kept = new HashSet<string>(keep, StringComparer.Ordinal);
        foreach (var o in graph.Output)
            kept.Add(o.Name);
        return kept;
    }

    /// <summary>
    /// Outputs of Relu nodes read by nothing but one MaxPool (as its input, the MaxPool returning no indices of its
    /// own), none of them in <paramref name="keep"/> or the graph's outputs.
    /// </summary>
    public static HashSet<string> ReluOutputsFeedingOnlyMaxPool(GraphProto graph, IEnumerable<string> keep)
    {
        var kept = KeptTensors(graph, keep);
        var uses = UseCounts(graph);
        var producers = Producers(graph);
        var result = new HashSet<string>(StringComparer.Ordinal);
        foreach (var pool in graph.Node)
        {
            if (pool.OpType != "MaxPool" || !IsDefaultDomain(pool) || pool.Output.Skip(1).Any(o => o.Length > 0)
                || Onnx.OnnxAttributes.GetInt(pool, "storage_order", 0) != 0)
                continue;
            string r = pool.Input[0];
            if (!kept.Contains(r) && uses.GetValueOrDefault(r) == 1 && producers.TryGetValue(r, out var relu)
                && relu.OpType == "Relu" && IsDefaultDomain(relu))
                result.Add(r);
        }
        return result;
    }

    /// <summary>True for nodes of the default ONNX domain.</summary>
    public static bool IsDefaultDomain(NodeProto node) => node.Domain is not { Length: > 0 } or "ai.onnx";

    /// <summary>A float tensor value info of unknown shape.</summary>
    public static ValueInfoProto FloatValue(string name) => new()
    {
        Name = name,
        Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)TensorProto.Types.DataType.Float } },
    };
}
