using Microsoft.ML.ActivationAtlas.Onnx.Protobuf;

namespace Microsoft.ML.ActivationAtlas.Onnx;

/// <summary>
/// Appends nodes and initializers to a graph with names that never collide with existing ones.
/// </summary>
/// <example>
/// <code>
/// var b = new OnnxGraphBuilder(model.Graph);
/// string two = b.Constant("two", 2f);
/// string y = b.Node("Mul", [x, two]);
/// string r = b.Node("ReduceSum", [y], OnnxAttributes.Ints("axes", 1), OnnxAttributes.Int("keepdims", 0));
/// </code>
/// </example>
public sealed class OnnxGraphBuilder
{
    private readonly HashSet<string> _names = new(StringComparer.Ordinal);
    private readonly Dictionary<string, int> _counters = new(StringComparer.Ordinal);

    /// <summary>Wraps <paramref name="graph"/>; every name already in it is reserved.</summary>
    /// <param name="graph">The graph to extend (modified in place).</param>
    /// <param name="namePrefix">Prepended to every generated name (e.g. <c>"grad/"</c>).</param>
    public OnnxGraphBuilder(GraphProto graph, string namePrefix = "")
    {
        Graph = graph ?? throw new ArgumentNullException(nameof(graph));
        NamePrefix = namePrefix ?? "";
        foreach (var i in graph.Input) _names.Add(i.Name);
        foreach (var o in graph.Output) _names.Add(o.Name);
        foreach (var t in graph.Initializer) _names.Add(t.Name);
        foreach (var v in graph.ValueInfo) _names.Add(v.Name);
        foreach (var n in graph.Node)
        {
            if (n.Name.Length > 0) _names.Add(n.Name);
            foreach (var o in n.Output) _names.Add(o);
            foreach (var i in n.Input) _names.Add(i);
        }
    }

    /// <summary>The graph being extended.</summary>
    public GraphProto Graph { get; }

    /// <summary>The prefix of every generated name.</summary>
    public string NamePrefix { get; }

    /// <summary>A name not yet used in the graph (nor handed out before), built from <paramref name="hint"/>.</summary>
    /// <param name="hint">A readable stem, e.g. <c>"relu_grad"</c>.</param>
    public string UniqueName(string hint)
    {
        string stem = NamePrefix + (string.IsNullOrEmpty(hint) ? "t" : hint);
        if (_names.Add(stem))
            return stem;
        _counters.TryGetValue(stem, out int k);
        string name;
        do
        {
            name = stem + "_" + (++k).ToString(System.Globalization.CultureInfo.InvariantCulture);
        } while (_names.Contains(name));
        _counters[stem] = k;
        _names.Add(name);
        return name;
    }

    /// <summary>Reserves a name chosen by the caller so generated names avoid it.</summary>
    /// <param name="name">The name.</param>
    /// <returns>Whether the name was free.</returns>
    public bool Reserve(string name) => _names.Add(name);

    /// <summary>Whether <paramref name="name"/> is used in the graph or was handed out or reserved.</summary>
    /// <param name="name">The name.</param>
    public bool IsReserved(string name) => _names.Contains(name);

    /// <summary>Appends a node with one output; returns the output's (unique) name.</summary>
    /// <param name="opType">The operator, e.g. <c>"Mul"</c>.</param>
    /// <param name="inputs">Input tensor names (<c>""</c> for an omitted optional input).</param>
    /// <param name="attributes">Attributes (see <see cref="OnnxAttributes"/>).</param>
    public string Node(string opType, IEnumerable<string> inputs, params AttributeProto[] attributes) =>
        Node(opType, inputs, 1, attributes)[0];

    /// <summary>Appends a node with <paramref name="outputCount"/> outputs; returns their (unique) names.</summary>
    /// <param name="opType">The operator.</param>
    /// <param name="inputs">Input tensor names.</param>
    /// <param name="outputCount">How many outputs to name.</param>
    /// <param name="attributes">Attributes.</param>
    public string[] Node(string opType, IEnumerable<string> inputs, int outputCount, params AttributeProto[] attributes)
    {
        var outputs = new string[outputCount];
        for (int i = 0; i < outputCount; i++)
            outputs[i] = UniqueName(opType.ToLowerInvariant() + "_out");
        NodeWithOutputs(opType, inputs, outputs, attributes);
        return outputs;
    }

    /// <summary>Appends a node whose outputs the caller names (names are reserved, not checked for collisions).</summary>
    /// <param name="opType">The operator.</param>
    /// <param name="inputs">Input tensor names.</param>
    /// <param name="outputs">Output tensor names.</param>
    /// <param name="attributes">Attributes.</param>
    /// <returns>The node added.</returns>
    public NodeProto NodeWithOutputs(string opType, IEnumerable<string> inputs, IEnumerable<string> outputs, params AttributeProto[] attributes)
    {
        var node = new NodeProto { OpType = opType, Name = UniqueName(opType) };
        node.Input.AddRange(inputs);
        foreach (var o in outputs)
        {
            _names.Add(o);
            node.Output.Add(o);
        }
        node.Attribute.AddRange(attributes);
        Graph.Node.Add(node);
        return node;
    }

    /// <summary>Adds a FLOAT initializer; returns its unique name.</summary>
    /// <param name="hint">Name stem.</param>
    /// <param name="values">Row-major values.</param>
    /// <param name="dims">Dimensions; none for a scalar.</param>
    public string Initializer(string hint, ReadOnlySpan<float> values, params long[] dims) =>
        Add(OnnxTensors.FromFloats(UniqueName(hint), values, dims));

    /// <summary>Adds an INT64 initializer; returns its unique name.</summary>
    /// <param name="hint">Name stem.</param>
    /// <param name="values">Row-major values.</param>
    /// <param name="dims">Dimensions; none for a scalar.</param>
    public string Initializer(string hint, ReadOnlySpan<long> values, params long[] dims) =>
        Add(OnnxTensors.FromLongs(UniqueName(hint), values, dims));

    /// <summary>Adds a scalar FLOAT initializer.</summary>
    /// <param name="hint">Name stem.</param>
    /// <param name="value">Value.</param>
    public string Constant(string hint, float value) => Add(OnnxTensors.Scalar(UniqueName(hint), value));

    /// <summary>Adds a 1-D INT64 initializer (shapes, axes, indices).</summary>
    /// <param name="hint">Name stem.</param>
    /// <param name="values">Values.</param>
    public string Vector(string hint, params long[] values) => Add(OnnxTensors.Vector(UniqueName(hint), values));

    /// <summary>Adds an existing tensor as an initializer (its name is reserved); returns its name.</summary>
    /// <param name="tensor">The tensor.</param>
    public string Add(TensorProto tensor)
    {
        _names.Add(tensor.Name);
        Graph.Initializer.Add(tensor);
        return tensor.Name;
    }

    /// <summary>Declares <paramref name="name"/> as a FLOAT graph output of the given dimensions (see <see cref="OnnxValueInfo.Tensor"/>).</summary>
    /// <param name="name">The tensor.</param>
    /// <param name="dims">Dimensions; none for unknown.</param>
    public void Output(string name, params object?[] dims) => Graph.Output.Add(OnnxValueInfo.Float(name, dims));

    /// <summary>Declares a new FLOAT graph input of the given dimensions (see <see cref="OnnxValueInfo.Tensor"/>).</summary>
    /// <param name="name">The tensor.</param>
    /// <param name="dims">Dimensions.</param>
    public void Input(string name, params object?[] dims)
    {
        _names.Add(name);
        Graph.Input.Add(OnnxValueInfo.Float(name, dims));
    }
}
