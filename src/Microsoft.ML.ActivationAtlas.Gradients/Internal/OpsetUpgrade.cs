using Microsoft.ML.ActivationAtlas.Onnx.Protobuf;
using static Microsoft.ML.ActivationAtlas.Onnx.OnnxAttributes;

namespace Microsoft.ML.ActivationAtlas.Gradients.Internal;

/// <summary>
/// Brings a model to the default-domain opset the derivative graphs need (ScatterElements with reduction is
/// opset 16), rewriting the nodes whose signature changed on the way: attributes that became inputs
/// (Unsqueeze, Squeeze, ReduceSum, Split, Pad, Slice, Clip, Reshape), attributes that were removed
/// (BatchNormalization's spatial/is_test, broadcast flags), Dropout (replaced by Identity) and the old
/// 2-D-coercing Softmax.
/// </summary>
internal static class OpsetUpgrade
{
    public const int MinimumOpset = 16;
    public const int TargetOpset = 17;

    /// <summary>The default-domain opset a model imports (1 when it imports none).</summary>
    public static int OpsetOf(ModelProto model)
        => (int)(model.OpsetImport.FirstOrDefault(o => o.Domain is "" or "ai.onnx")?.Version ?? 1);

    /// <summary>Upgrades the model in place when its opset is below <see cref="MinimumOpset"/>; returns the opset.</summary>
    public static int Apply(ModelProto model)
    {
        int from = OpsetOf(model);
        if (model.IrVersion < 8)
        {
            // From IR 4 on, initializers need not be graph inputs; listing them as inputs stops ORT from folding them.
            var initializers = new HashSet<string>(model.Graph.Initializer.Select(t => t.Name), StringComparer.Ordinal);
            var keep = model.Graph.Input.Where(i => !initializers.Contains(i.Name)).ToList();
            model.Graph.Input.Clear();
            model.Graph.Input.AddRange(keep);
            model.IrVersion = 8;
        }
        if (from >= MinimumOpset)
            return from;

        var g = new GraphEmitter(model.Graph, TargetOpset, "upgrade__");
        var nodes = model.Graph.Node.ToList();
        model.Graph.Node.Clear();
        foreach (var node in nodes)
        {
            var replacement = Upgrade(g, node, from);
            model.Graph.Node.Add(replacement);
        }

        var opset = model.OpsetImport.FirstOrDefault(o => o.Domain is "" or "ai.onnx");
        if (opset is null)
            model.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = TargetOpset });
        else
            opset.Version = TargetOpset;
        return TargetOpset;
    }

    private static NodeProto Upgrade(GraphEmitter g, NodeProto node, int from)
    {
        switch (node.OpType)
        {
            case "BatchNormalization":
                if (GetInt(node, "spatial", 1) != 1)
                    throw new UnsupportedOperatorException(node.OpType, node.Name, "spatial=0 cannot be expressed in opset 9 or later.");
                Remove(node, "spatial", "is_test", "consumed_inputs");
                while (node.Output.Count > 1) node.Output.RemoveAt(node.Output.Count - 1);
                break;
            case "Unsqueeze" or "Squeeze" or "ReduceSum" when from < 13:
                MoveIntsToInput(g, node, "axes", 1);
                break;
            case "Split" when from < 13:
                MoveIntsToInput(g, node, "split", 1);
                break;
            case "Reshape" when from < 5:
                MoveIntsToInput(g, node, "shape", 1);
                break;
            case "Slice" when from < 10:
            {
                long[] starts = GetInts(node, "starts") ?? [];
                long[] ends = GetInts(node, "ends") ?? [];
                long[]? axes = GetInts(node, "axes");
                Remove(node, "starts", "ends", "axes");
                node.Input.Add(g.Int64s(starts));
                node.Input.Add(g.Int64s(ends));
                if (axes is not null) node.Input.Add(g.Int64s(axes));
                break;
            }
            case "Pad" when from < 11:
            {
                long[] pads = GetInts(node, "pads") ?? GetInts(node, "paddings") ?? [];
                float value = GetFloat(node, "value", 0f);
                Remove(node, "pads", "paddings", "value");
                node.Input.Add(g.Int64s(pads));
                node.Input.Add(g.FloatScalar(value));
                break;
            }
            case "Clip" when from < 11:
            {
                float min = GetFloat(node, "min", float.MinValue), max = GetFloat(node, "max", float.MaxValue);
                Remove(node, "min", "max");
                node.Input.Add(g.FloatScalar(min));
                node.Input.Add(g.FloatScalar(max));
                break;
            }
            case "Dropout":
            {
                var identity = new NodeProto { Name = node.Name, OpType = "Identity" };
                identity.Input.Add(node.Input[0]);
                identity.Output.Add(node.Output[0]);
                return identity;
            }
            case "Add" or "Sub" or "Mul" or "Div" or "Gemm" when from < 7:
                if (Find(node, "axis") is not null)
                    throw new UnsupportedOperatorException(node.OpType, node.Name, "legacy broadcasting with an axis attribute is not supported.");
                Remove(node, "broadcast", "consumed_inputs");
                break;
            case "Softmax" when from < 13:
            {
                // Old Softmax flattens to 2-D at `axis`; express that explicitly.
                long axis = GetInt(node, "axis", 1);
                string flat = g.Emit("Flatten", [node.Input[0]], Int("axis", axis));
                string soft = g.Emit("Softmax", [flat], Int("axis", 1));
                string shape = g.Emit("Shape", [node.Input[0]]);
                var reshape = new NodeProto { Name = node.Name, OpType = "Reshape" };
                reshape.Input.Add(soft);
                reshape.Input.Add(shape);
                reshape.Output.Add(node.Output[0]);
                // The helper nodes were appended to the graph; move them before this node by returning a
                // node that the caller adds after them.
                return reshape;
            }
            default:
                Remove(node, "consumed_inputs");
                break;
        }
        return node;
    }

    private static void MoveIntsToInput(GraphEmitter g, NodeProto node, string attribute, int inputIndex)
    {
        long[]? values = GetInts(node, attribute);
        Remove(node, attribute);
        if (values is null)
            return;
        while (node.Input.Count < inputIndex) node.Input.Add("");
        node.Input.Insert(inputIndex, g.Int64s(values));
    }

    private static void Remove(NodeProto node, params string[] names)
    {
        for (int i = node.Attribute.Count - 1; i >= 0; i--)
            if (Array.IndexOf(names, node.Attribute[i].Name) >= 0)
                node.Attribute.RemoveAt(i);
    }
}
