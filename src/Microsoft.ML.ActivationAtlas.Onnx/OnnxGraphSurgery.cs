using Microsoft.ML.ActivationAtlas.Onnx.Protobuf;

namespace Microsoft.ML.ActivationAtlas.Onnx;

/// <summary>
/// Graph edits that return new models (the input model is never modified): exposing hidden tensors as outputs,
/// cutting a model at a layer (what <c>onnx.utils.extract_model</c> does), making the batch dimension symbolic and
/// chaining two models.
/// </summary>
public static class OnnxGraphSurgery
{
    /// <summary>
    /// A copy of <paramref name="model"/> with <paramref name="tensors"/> added as graph outputs (after the existing
    /// outputs unless <paramref name="keepExistingOutputs"/> is false). Their types come from the graph's
    /// <c>value_info</c> where declared; otherwise ONNX Runtime infers them.
    /// </summary>
    /// <param name="model">The model.</param>
    /// <param name="tensors">Names of tensors produced by nodes of the graph (or graph inputs).</param>
    /// <param name="keepExistingOutputs">Whether the model's own outputs stay outputs.</param>
    /// <exception cref="ArgumentException">A name is not a tensor of the graph.</exception>
    public static ModelProto ExposeOutputs(ModelProto model, IEnumerable<string> tensors, bool keepExistingOutputs = true)
    {
        ArgumentNullException.ThrowIfNull(model);
        var copy = model.Clone();
        var g = copy.Graph;
        var produced = ProducedTensors(g);
        var declared = g.ValueInfo.ToDictionary(v => v.Name, StringComparer.Ordinal);
        if (!keepExistingOutputs)
            g.Output.Clear();
        var present = new HashSet<string>(g.Output.Select(o => o.Name), StringComparer.Ordinal);
        foreach (string t in tensors)
        {
            if (!produced.Contains(t))
                throw new ArgumentException($"'{t}' is not a tensor produced by the graph; it cannot be exposed as an output.", nameof(tensors));
            if (!present.Add(t))
                continue;
            g.Output.Add(declared.TryGetValue(t, out var v) ? v.Clone() : new ValueInfoProto { Name = t });
        }
        return copy;
    }

    /// <summary>
    /// The part of <paramref name="model"/> that computes <paramref name="outputs"/> from <paramref name="inputs"/>
    /// (nodes, initializers and declarations it needs). An input that is not an input of the original graph becomes
    /// a new FLOAT input whose first dimension is its own symbolic batch dimension (<c>&lt;name&gt;_batch</c>) and
    /// whose other dimensions come from <paramref name="knownShapes"/> (unknown otherwise).
    /// </summary>
    /// <param name="model">The model.</param>
    /// <param name="inputs">The tensors the sub-model starts from.</param>
    /// <param name="outputs">The tensors the sub-model computes.</param>
    /// <param name="knownShapes">Optional shapes (e.g. from <see cref="OnnxLayers.Probe"/>) for new inputs and outputs; the batch entry is ignored.</param>
    /// <exception cref="ArgumentException">A name is unknown, or an output depends on a graph input not among <paramref name="inputs"/>.</exception>
    public static ModelProto Extract(ModelProto model, IReadOnlyList<string> inputs, IReadOnlyList<string> outputs,
        IReadOnlyDictionary<string, long[]>? knownShapes = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        var g = model.Graph;
        var producer = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; i < g.Node.Count; i++)
            foreach (var o in g.Node[i].Output)
                if (o.Length > 0)
                    producer[o] = i;
        var initializers = g.Initializer.ToDictionary(t => t.Name, StringComparer.Ordinal);
        var graphInputs = g.Input.ToDictionary(v => v.Name, StringComparer.Ordinal);
        var stop = new HashSet<string>(inputs, StringComparer.Ordinal);
        foreach (var name in inputs.Concat(outputs))
            if (!producer.ContainsKey(name) && !graphInputs.ContainsKey(name))
                throw new ArgumentException($"'{name}' is not a tensor of the graph.");

        // Walk back from the outputs, stopping at the requested inputs.
        var keepNodes = new SortedSet<int>();
        var usedInitializers = new HashSet<string>(StringComparer.Ordinal);
        var stack = new Stack<string>(outputs);
        var seen = new HashSet<string>(StringComparer.Ordinal);
        while (stack.Count > 0)
        {
            string t = stack.Pop();
            if (t.Length == 0 || !seen.Add(t) || stop.Contains(t))
                continue;
            if (initializers.ContainsKey(t))
            {
                usedInitializers.Add(t);
                continue;
            }
            if (producer.TryGetValue(t, out int n))
            {
                if (keepNodes.Add(n))
                    foreach (var i in g.Node[n].Input)
                        stack.Push(i);
                continue;
            }
            if (graphInputs.ContainsKey(t))
                throw new ArgumentException($"The outputs [{string.Join(", ", outputs)}] depend on graph input '{t}', which is not among the sub-model's inputs [{string.Join(", ", inputs)}].");
            // Any other name (sub-graph outer-scope references) is left to the runtime to resolve.
        }

        var sub = model.Clone();
        var sg = sub.Graph;
        sg.Node.Clear();
        foreach (int n in keepNodes)
            sg.Node.Add(g.Node[n].Clone());
        sg.Initializer.Clear();
        foreach (var t in g.Initializer)
            if (usedInitializers.Contains(t.Name))
                sg.Initializer.Add(t.Clone());
        sg.Input.Clear();
        foreach (var name in inputs)
        {
            if (graphInputs.TryGetValue(name, out var original))
                sg.Input.Add(original.Clone());
            else
                sg.Input.Add(OnnxValueInfo.Float(name, BatchDims(name, knownShapes)));
        }
        foreach (var v in g.Input)
            if (usedInitializers.Contains(v.Name) && !stop.Contains(v.Name))
                sg.Input.Add(v.Clone()); // initializers that old IR versions also list as inputs
        sg.Output.Clear();
        var originalOutputs = g.Output.ToDictionary(v => v.Name, StringComparer.Ordinal);
        foreach (var name in outputs)
        {
            if (originalOutputs.TryGetValue(name, out var o))
                sg.Output.Add(o.Clone());
            else if (knownShapes is not null && knownShapes.ContainsKey(name))
                sg.Output.Add(OnnxValueInfo.Float(name, BatchDims(name, knownShapes)));
            else
                sg.Output.Add(new ValueInfoProto { Name = name });
        }
        var keptTensors = new HashSet<string>(sg.Node.SelectMany(n => n.Output), StringComparer.Ordinal);
        var valueInfo = sg.ValueInfo.Where(v => keptTensors.Contains(v.Name) && !stop.Contains(v.Name)).ToList();
        sg.ValueInfo.Clear();
        sg.ValueInfo.AddRange(valueInfo);
        return sub;
    }

    /// <summary>The sub-model from the graph's inputs to <paramref name="layer"/> (its only output).</summary>
    /// <param name="model">The model.</param>
    /// <param name="layer">The hidden tensor.</param>
    /// <param name="knownShapes">Optional shapes for the new output's declaration.</param>
    public static ModelProto CutInputToLayer(ModelProto model, string layer, IReadOnlyDictionary<string, long[]>? knownShapes = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        var inputs = RealInputs(model.Graph).ToList();
        var needed = Extract(model, inputs, [layer], knownShapes);
        // Keep only the graph inputs the layer depends on.
        var used = new HashSet<string>(needed.Graph.Node.SelectMany(n => n.Input), StringComparer.Ordinal);
        var unused = needed.Graph.Input.Where(i => inputs.Contains(i.Name) && !used.Contains(i.Name) && i.Name != layer).ToList();
        foreach (var u in unused)
            needed.Graph.Input.Remove(u);
        return needed;
    }

    /// <summary>
    /// The sub-model from <paramref name="layer"/> to the graph's outputs. <paramref name="layer"/> becomes an input
    /// with its own symbolic batch dimension. Where the outputs also depend on other tensors computed before the
    /// layer (a skip connection around it), those become inputs too, each with its own batch dimension; where they
    /// depend on an original graph input, that input is kept.
    /// </summary>
    /// <param name="model">The model.</param>
    /// <param name="layer">The hidden tensor to start from.</param>
    /// <param name="knownShapes">Optional shapes for the new inputs' declarations.</param>
    public static ModelProto CutLayerToOutputs(ModelProto model, string layer, IReadOnlyDictionary<string, long[]>? knownShapes = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        var g = model.Graph;
        var producer = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; i < g.Node.Count; i++)
            foreach (var o in g.Node[i].Output)
                producer[o] = i;
        if (!producer.ContainsKey(layer))
            throw new ArgumentException($"'{layer}' is not a tensor produced by a node of the graph.", nameof(layer));

        // Tensors computed upstream of the layer (its ancestors, the layer included).
        var upstream = new HashSet<string>(StringComparer.Ordinal);
        var stack = new Stack<string>([layer]);
        while (stack.Count > 0)
        {
            string t = stack.Pop();
            if (!upstream.Add(t))
                continue;
            if (producer.TryGetValue(t, out int n))
                foreach (var i in g.Node[n].Input)
                    stack.Push(i);
        }
        var initializers = new HashSet<string>(g.Initializer.Select(t => t.Name), StringComparer.Ordinal);
        var graphInputs = new HashSet<string>(RealInputs(g), StringComparer.Ordinal);

        // Walk back from the outputs; stop at the layer and at any other upstream activation (a boundary tensor).
        var boundary = new List<string> { layer };
        var seen = new HashSet<string>(StringComparer.Ordinal);
        stack = new Stack<string>(g.Output.Select(o => o.Name));
        while (stack.Count > 0)
        {
            string t = stack.Pop();
            if (t.Length == 0 || !seen.Add(t) || t == layer || initializers.Contains(t))
                continue;
            if (upstream.Contains(t) && !IsConstantSubgraph(t, g, producer, initializers))
            {
                if (!boundary.Contains(t))
                    boundary.Add(t);
                continue;
            }
            if (graphInputs.Contains(t))
            {
                if (!boundary.Contains(t))
                    boundary.Add(t);
                continue;
            }
            if (producer.TryGetValue(t, out int n))
                foreach (var i in g.Node[n].Input)
                    stack.Push(i);
        }
        return Extract(model, boundary, g.Output.Select(o => o.Name).ToList(), knownShapes);
    }

    /// <summary>
    /// A copy whose inputs and outputs have a symbolic first (batch) dimension <paramref name="dimName"/>, so one
    /// session runs any batch size. Intermediate shape declarations (<c>value_info</c>) are dropped, as they may pin
    /// the batch; the runtime infers them again. Models that reshape with a hard-coded batch size stay batch-bound.
    /// </summary>
    /// <param name="model">The model.</param>
    /// <param name="dimName">The symbolic dimension's name.</param>
    public static ModelProto MakeBatchDynamic(ModelProto model, string dimName = "batch")
    {
        ArgumentNullException.ThrowIfNull(model);
        var copy = model.Clone();
        var g = copy.Graph;
        var initializers = new HashSet<string>(g.Initializer.Select(t => t.Name), StringComparer.Ordinal);
        foreach (var v in g.Input.Where(v => !initializers.Contains(v.Name)).Concat(g.Output))
        {
            var shape = v.Type?.TensorType?.Shape;
            if (shape is { Dim.Count: > 0 })
                shape.Dim[0] = new TensorShapeProto.Types.Dimension { DimParam = dimName };
        }
        g.ValueInfo.Clear();
        return copy;
    }

    /// <summary>
    /// One model computing <paramref name="second"/>(<paramref name="first"/>(x)): the first model's single output feeds
    /// the second model's input <paramref name="secondInput"/> (its first input by default). Names of the first
    /// model are prefixed with <c>pre/</c> where they would collide. Both models must use the same version of the
    /// default operator set.
    /// </summary>
    /// <param name="first">The model applied first (e.g. a preprocessing model) with one output.</param>
    /// <param name="second">The model applied second.</param>
    /// <param name="secondInput">The input of <paramref name="second"/> to feed; null for its first input.</param>
    public static ModelProto Chain(ModelProto first, ModelProto second, string? secondInput = null)
    {
        ArgumentNullException.ThrowIfNull(first);
        ArgumentNullException.ThrowIfNull(second);
        if (first.Graph.Output.Count != 1)
            throw new ArgumentException($"The first model must have exactly one output; it has {first.Graph.Output.Count}.", nameof(first));
        var a = first.Clone();
        var b = second.Clone();
        long va = DefaultOpset(a), vb = DefaultOpset(b);
        if (va != vb)
            throw new NotSupportedException($"Cannot chain models with different default opset versions ({va} and {vb}); run them as separate sessions.");
        var bInitializers = new HashSet<string>(b.Graph.Initializer.Select(t => t.Name), StringComparer.Ordinal);
        string target = secondInput ?? RealInputs(b.Graph).First();
        if (!b.Graph.Input.Any(i => i.Name == target))
            throw new ArgumentException($"The second model has no input '{target}'.", nameof(secondInput));

        // Rename every tensor and node of the first model that collides with a name in the second.
        var bNames = new HashSet<string>(StringComparer.Ordinal);
        foreach (var v in b.Graph.Input.Concat(b.Graph.Output).Concat(b.Graph.ValueInfo)) bNames.Add(v.Name);
        foreach (var t in b.Graph.Initializer) bNames.Add(t.Name);
        foreach (var n in b.Graph.Node) { bNames.Add(n.Name); foreach (var o in n.Output) bNames.Add(o); }
        string Rename(string s) => s.Length > 0 && bNames.Contains(s) ? "pre/" + s : s;
        foreach (var n in a.Graph.Node)
        {
            n.Name = Rename(n.Name);
            for (int i = 0; i < n.Input.Count; i++) n.Input[i] = Rename(n.Input[i]);
            for (int i = 0; i < n.Output.Count; i++) n.Output[i] = Rename(n.Output[i]);
        }
        foreach (var t in a.Graph.Initializer) t.Name = Rename(t.Name);
        foreach (var v in a.Graph.Input.Concat(a.Graph.Output).Concat(a.Graph.ValueInfo)) v.Name = Rename(v.Name);

        string link = a.Graph.Output[0].Name;
        foreach (var n in b.Graph.Node)
            for (int i = 0; i < n.Input.Count; i++)
                if (n.Input[i] == target)
                    n.Input[i] = link;
        foreach (var o in b.Graph.Output)
            if (o.Name == target)
                throw new NotSupportedException($"The second model's input '{target}' is also its output.");

        var g = b.Graph;
        var newInputs = a.Graph.Input.Where(v => !a.Graph.Initializer.Any(t => t.Name == v.Name))
            .Concat(g.Input.Where(v => v.Name != target)).Select(v => v.Clone()).ToList();
        g.Input.Clear();
        g.Input.AddRange(newInputs);
        var nodes = a.Graph.Node.Concat(g.Node).ToList();
        g.Node.Clear();
        g.Node.AddRange(nodes);
        g.Initializer.AddRange(a.Graph.Initializer);
        g.ValueInfo.AddRange(a.Graph.ValueInfo);
        g.ValueInfo.Add(a.Graph.Output[0]);
        b.IrVersion = Math.Max(a.IrVersion, b.IrVersion);
        foreach (var op in a.OpsetImport)
            if (!b.OpsetImport.Any(o => o.Domain == op.Domain))
                b.OpsetImport.Add(op.Clone());
        return b;
    }

    /// <summary>The graph inputs that are not initializers (old IR versions list initializers as inputs too).</summary>
    /// <param name="graph">The graph.</param>
    public static IEnumerable<string> RealInputs(GraphProto graph)
    {
        var initializers = new HashSet<string>(graph.Initializer.Select(t => t.Name), StringComparer.Ordinal);
        return graph.Input.Where(v => !initializers.Contains(v.Name)).Select(v => v.Name);
    }

    private static long DefaultOpset(ModelProto m) =>
        m.OpsetImport.FirstOrDefault(o => o.Domain is "" or "ai.onnx")?.Version ?? 0;

    private static HashSet<string> ProducedTensors(GraphProto g)
    {
        var set = new HashSet<string>(StringComparer.Ordinal);
        foreach (var n in g.Node)
            foreach (var o in n.Output)
                if (o.Length > 0)
                    set.Add(o);
        foreach (var i in g.Input)
            set.Add(i.Name);
        return set;
    }

    // A tensor computed from initializers only (e.g. a shape constant) is copied rather than made an input.
    private static bool IsConstantSubgraph(string t, GraphProto g, Dictionary<string, int> producer, HashSet<string> initializers)
    {
        var stack = new Stack<string>([t]);
        var seen = new HashSet<string>(StringComparer.Ordinal);
        while (stack.Count > 0)
        {
            string x = stack.Pop();
            if (x.Length == 0 || !seen.Add(x) || initializers.Contains(x))
                continue;
            if (!producer.TryGetValue(x, out int n))
                return false;
            foreach (var i in g.Node[n].Input)
                stack.Push(i);
        }
        return true;
    }

    private static object?[] BatchDims(string name, IReadOnlyDictionary<string, long[]>? knownShapes)
    {
        string batch = name + "_batch";
        if (knownShapes is null || !knownShapes.TryGetValue(name, out var shape) || shape.Length == 0)
            return [];
        var dims = new object?[shape.Length];
        dims[0] = batch;
        for (int i = 1; i < shape.Length; i++)
            dims[i] = shape[i] >= 0 ? shape[i] : null;
        return dims;
    }
}
