using Microsoft.ML.ActivationAtlas.Gradients.Internal;
using Microsoft.ML.ActivationAtlas.Onnx.Protobuf;

namespace Microsoft.ML.ActivationAtlas.Gradients;

/// <summary>
/// The attribution graph of a classifier: for each example, h . d(logit_k)/d(h) for every class k at once, where
/// h is the activation vector of a hidden layer at the positions selected by a mask. It is the forward-mode
/// (tangent) graph of "layer -> logits" with the tangent set to the layer's value times the mask.
/// </summary>
public static class AttributionGraph
{
    /// <summary>
    /// Name of the added input: a mask, 1 at the positions whose activation vector is attributed: [N,1,H,W] for a
    /// spatial layer [N,C,H,W], [N,T,1] for a token layer [N,T,C] (see <see cref="GradientFixtureCheck.AttributionMask"/>).
    /// </summary>
    public const string MaskName = "attribution_mask";

    /// <summary>Name of the added output: the attribution to every logit, [N,K].</summary>
    public const string AttributionName = "attribution";

    /// <summary>
    /// Builds the graph. Inputs: the model's inputs and <see cref="MaskName"/>; outputs: <paramref name="layer"/>
    /// (the layer's value), <paramref name="logits"/> and <see cref="AttributionName"/>.
    /// </summary>
    /// <param name="model">A classifier; not modified.</param>
    /// <param name="layer">The hidden tensor whose activation vectors are attributed: [N,C,H,W] or tokens [N,T,C].</param>
    /// <param name="logits">The class-score tensor [N,K].</param>
    /// <param name="doublePrecision">Compute in float64 inside the graph (see <see cref="JvpOptions.DoublePrecision"/>).</param>
    /// <param name="maxPoolRelaxation">Average the tangent over max-pool windows (see <see cref="JvpOptions.MaxPoolRelaxation"/>).</param>
    public static ModelProto Build(ModelProto model, string layer, string logits, bool doublePrecision = false, bool maxPoolRelaxation = false)
    {
        const string tangent = "attribution_tangent";
        var jvp = GradientGraphBuilder.BuildJvp(model, new JvpOptions
        {
            At = layer,
            Outputs = [logits],
            TangentName = tangent,
            TangentSuffix = "__attribution",
            DoublePrecision = doublePrecision,
            DeferDoubleConversion = true,
            MaxPoolRelaxation = maxPoolRelaxation,
        });
        var graph = jvp.Graph;
        if (graph.Node.Any(n => n.Output.Contains(MaskName) || n.Output.Contains(AttributionName)))
            throw new ArgumentException($"The model already uses the name '{MaskName}' or '{AttributionName}'.");

        // The tangent becomes layer * mask, computed right after the layer.
        var input = graph.Input.First(i => i.Name == tangent);
        graph.Input.Remove(input);
        graph.Input.Add(GraphAnalysis.FloatValue(MaskName));
        var multiply = new NodeProto { OpType = "Mul", Name = "attribution_tangent_from_mask" };
        multiply.Input.Add(layer);
        multiply.Input.Add(MaskName);
        multiply.Output.Add(tangent);
        int producer = -1;
        for (int i = 0; i < graph.Node.Count; i++)
            if (graph.Node[i].Output.Contains(layer)) { producer = i; break; }
        graph.Node.Insert(producer + 1, multiply);

        var rename = new NodeProto { OpType = "Identity", Name = "attribution_output" };
        rename.Input.Add(logits + "__attribution");
        rename.Output.Add(AttributionName);
        graph.Node.Add(rename);
        graph.Output.Clear();
        graph.Output.Add(GraphAnalysis.FloatValue(layer));
        graph.Output.Add(GraphAnalysis.FloatValue(logits));
        graph.Output.Add(GraphAnalysis.FloatValue(AttributionName));
        GraphAnalysis.Prune(graph, [MaskName]);
        if (doublePrecision)
            Internal.DoublePrecision.Apply(jvp);
        return jvp;
    }
}
