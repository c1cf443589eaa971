using Microsoft.ML.ActivationAtlas.Gradients.Internal;
using Microsoft.ML.ActivationAtlas.Gradients.Rules;
using Microsoft.ML.ActivationAtlas.Onnx.Protobuf;

namespace Microsoft.ML.ActivationAtlas.Gradients;

/// <summary>
/// Builds derivative graphs of ONNX models as plain ONNX models that ONNX Runtime runs like any other:
/// reverse mode (<see cref="BuildVjp"/>: value and gradient of a seeded tensor or an objective) and forward
/// mode (<see cref="BuildJvp"/>: directional derivatives of outputs along one tangent per example).
/// The input model is not modified.
/// </summary>
public static class GradientGraphBuilder
{
    private const string Prefix = "grad__";

    /// <summary>The operator types (default domain) that have derivative rules.</summary>
    public static IEnumerable<string> SupportedOperators => RuleTable.Default.Operators;

    /// <summary>
    /// Builds the reverse-mode graph. Its inputs are the model inputs still needed (or <see cref="VjpOptions.WithRespectTo"/>
    /// when cut there) plus <see cref="VjpOptions.SeedName"/> unless an objective is given; its outputs are
    /// <see cref="VjpOptions.Of"/> (forward value), <see cref="VjpOptions.ObjectiveName"/> (with an objective) and
    /// <see cref="VjpOptions.GradientName"/>.
    /// </summary>
    /// <param name="model">The model; not modified.</param>
    /// <param name="options">What to differentiate.</param>
    /// <returns>A new model.</returns>
    /// <exception cref="UnsupportedOperatorException">A node on the path has no derivative rule.</exception>
    public static ModelProto BuildVjp(ModelProto model, VjpOptions options)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(options);
        var m = model.Clone();
        int opset = OpsetUpgrade.Apply(m);
        var graph = m.Graph;
        string wrt = options.WithRespectTo ?? graph.Input.FirstOrDefault()?.Name
            ?? throw new ArgumentException("The model has no inputs.");
        GraphAnalysis.RequireTensor(graph, wrt, nameof(VjpOptions.WithRespectTo));
        GraphAnalysis.RequireTensor(graph, options.Of, nameof(VjpOptions.Of));
        if (options.CutAtWithRespectTo)
            Cut(graph, wrt);
        if (options.DoublePrecision)
            DoublePrecision.Prepare(m, opset);

        var g = new GraphEmitter(graph, opset, Prefix);
        foreach (var name in new[] { options.SeedName, options.GradientName, options.ObjectiveName })
            if (g.IsTaken(name))
                throw new ArgumentException($"The name '{name}' chosen for an added tensor is already used in the model.");
        if (options.FoldBatchNormalization && !options.DoublePrecision)
            ConvBatchNormFold.Apply(graph, g, [wrt, options.Of]);

        string target = options.Of;
        string? objective = null;
        if (options.Objective is not null)
        {
            objective = options.Objective.Emit(g, options.Of);
            target = objective;
        }

        var active = GraphAnalysis.Active(graph, wrt);
        var nodes = GraphAnalysis.Between(graph, active, [target]);
        var ctx = new RuleContext(graph, g, active, new DifferentiationSettings(options.MaxPoolRelaxation, options.ReluRedirection),
            options.ReluMaskAtMaxPool, [wrt, options.Of]);

        var gradients = new Dictionary<string, List<string>>(StringComparer.Ordinal);
        string seed;
        if (objective is null)
        {
            graph.Input.Add(GraphAnalysis.FloatValue(options.SeedName));
            g.Reserve(options.SeedName);
            seed = options.SeedName;
        }
        else
        {
            seed = g.Emit("ConstantOfShape", [g.Shape(objective)], Onnx.OnnxAttributes.Tensor("value", GraphEmitter.FloatValue(1f)));
        }
        gradients[target] = [seed];

        for (int k = nodes.Count - 1; k >= 0; k--)
        {
            var node = nodes[k];
            var outputGradients = node.Output.Select(o => Accumulate(g, gradients, o)).ToArray();
            if (outputGradients.All(d => d is null))
                continue;
            var rule = RuleTable.Default.Vjp(node.OpType)
                ?? throw new UnsupportedOperatorException(node.OpType, node.Name, "no reverse-mode rule for this operator.");
            var inputGradients = rule(ctx, node, outputGradients);
            for (int i = 0; i < node.Input.Count && i < inputGradients.Length; i++)
            {
                if (inputGradients[i] is not { } d || !ctx.IsActive(node.Input[i]))
                    continue;
                if (!gradients.TryGetValue(node.Input[i], out var list))
                    gradients[node.Input[i]] = list = [];
                list.Add(d);
            }
        }

        string gradient = Accumulate(g, gradients, wrt) ?? g.ZerosLike(wrt);
        g.EmitNamed("Identity", [gradient], options.GradientName);

        graph.Output.Clear();
        graph.Output.Add(GraphAnalysis.FloatValue(options.Of));
        if (objective is not null)
        {
            g.EmitNamed("Identity", [objective], options.ObjectiveName);
            graph.Output.Add(GraphAnalysis.FloatValue(options.ObjectiveName));
        }
        graph.Output.Add(GraphAnalysis.FloatValue(options.GradientName));
        GraphAnalysis.Prune(graph, objective is null ? [options.SeedName] : []);
        if (options.DoublePrecision)
            DoublePrecision.Apply(m);
        return m;
    }

    /// <summary>
    /// Builds the forward-mode (tangent) graph. Its inputs are the model inputs still needed (or
    /// <see cref="JvpOptions.At"/> when cut there) plus <see cref="JvpOptions.TangentName"/>, shaped like
    /// <see cref="JvpOptions.At"/>; its outputs are, for each requested output <c>o</c>, <c>o</c> itself and
    /// <c>o + TangentSuffix</c>, the derivative of <c>o</c> along each example's tangent.
    /// </summary>
    /// <param name="model">The model; not modified.</param>
    /// <param name="options">Where the tangent is applied and which outputs to differentiate.</param>
    /// <returns>A new model.</returns>
    /// <exception cref="UnsupportedOperatorException">A node on the path has no derivative rule.</exception>
    public static ModelProto BuildJvp(ModelProto model, JvpOptions options)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(options);
        var m = model.Clone();
        int opset = OpsetUpgrade.Apply(m);
        var graph = m.Graph;
        GraphAnalysis.RequireTensor(graph, options.At, nameof(JvpOptions.At));
        var outputs = options.Outputs.Count > 0 ? options.Outputs.ToList() : graph.Output.Select(o => o.Name).ToList();
        foreach (var o in outputs)
            GraphAnalysis.RequireTensor(graph, o, nameof(JvpOptions.Outputs));
        if (options.CutAtTangentPoint)
            Cut(graph, options.At);
        if (options.DoublePrecision)
            DoublePrecision.Prepare(m, opset);

        var g = new GraphEmitter(graph, opset, Prefix);
        if (g.IsTaken(options.TangentName))
            throw new ArgumentException($"The tangent input name '{options.TangentName}' is already used in the model.");
        foreach (var o in outputs)
            if (g.IsTaken(o + options.TangentSuffix))
                throw new ArgumentException($"The tangent output name '{o + options.TangentSuffix}' is already used in the model.");
        graph.Input.Add(GraphAnalysis.FloatValue(options.TangentName));
        g.Reserve(options.TangentName);
        if (options.FoldBatchNormalization && !options.DoublePrecision)
            ConvBatchNormFold.Apply(graph, g, [options.At, .. outputs]);

        var active = GraphAnalysis.Active(graph, options.At);
        var nodes = GraphAnalysis.Between(graph, active, outputs);
        var ctx = new RuleContext(graph, g, active, new DifferentiationSettings(options.MaxPoolRelaxation, false),
            options.ReluMaskAtMaxPool, [options.At, .. outputs]);
        var tangents = new Dictionary<string, string>(StringComparer.Ordinal) { [options.At] = options.TangentName };

        foreach (var node in nodes)
        {
            var inputTangents = node.Input.Select(i => i.Length > 0 && tangents.TryGetValue(i, out var t) ? t : null).ToArray();
            if (inputTangents.All(t => t is null))
                continue;
            var rule = RuleTable.Default.Jvp(node.OpType)
                ?? throw new UnsupportedOperatorException(node.OpType, node.Name, "no forward-mode rule for this operator.");
            var outputTangents = rule(ctx, node, inputTangents);
            for (int j = 0; j < node.Output.Count && j < outputTangents.Length; j++)
                if (outputTangents[j] is { } t && node.Output[j].Length > 0)
                    tangents[node.Output[j]] = t;
        }

        graph.Output.Clear();
        foreach (var o in outputs)
        {
            string tangent = tangents.TryGetValue(o, out var t) ? t : g.ZerosLike(o);
            g.EmitNamed("Identity", [tangent], o + options.TangentSuffix);
            graph.Output.Add(GraphAnalysis.FloatValue(o));
            graph.Output.Add(GraphAnalysis.FloatValue(o + options.TangentSuffix));
        }
        GraphAnalysis.Prune(graph, [options.TangentName]);
        if (options.DoublePrecision && !options.DeferDoubleConversion)
            DoublePrecision.Apply(m);
        return m;
    }

    /// <summary>
    /// The operator types on the paths from <paramref name="from"/> to <paramref name="to"/> that have no
    /// derivative rule (empty when both modes can be built).
    /// </summary>
    /// <param name="model">The model.</param>
    /// <param name="from">The differentiation point (a graph input or hidden tensor).</param>
    /// <param name="to">The targets.</param>
    public static IReadOnlyList<string> FindUnsupportedOperators(ModelProto model, string from, IEnumerable<string> to)
    {
        ArgumentNullException.ThrowIfNull(model);
        var m = model.Clone();
        OpsetUpgrade.Apply(m);
        GraphAnalysis.RequireTensor(m.Graph, from, nameof(from));
        var active = GraphAnalysis.Active(m.Graph, from);
        return GraphAnalysis.Between(m.Graph, active, to)
            .Select(n => n.OpType)
            .Where(op => RuleTable.Default.Vjp(op) is null)
            .Distinct(StringComparer.Ordinal)
            .Order(StringComparer.Ordinal)
            .ToList();
    }

    private static string? Accumulate(GraphEmitter g, Dictionary<string, List<string>> gradients, string tensor)
    {
        if (tensor.Length == 0 || !gradients.TryGetValue(tensor, out var list) || list.Count == 0)
            return null;
        if (list.Count > 1)
        {
            string sum = g.Sum(list);
            list.Clear();
            list.Add(sum);
        }
        return list[0];
    }

    /// <summary>Makes a hidden tensor a graph input by removing the node that produces it.</summary>
    private static void Cut(GraphProto graph, string tensor)
    {
        if (graph.Input.Any(i => i.Name == tensor))
            return;
        var producer = graph.Node.First(n => n.Output.Contains(tensor));
        graph.Node.Remove(producer);
        graph.Input.Add(GraphAnalysis.FloatValue(tensor));
    }
}
