using System.Text.Json;
using Microsoft.ML.ActivationAtlas.Onnx;

namespace Microsoft.ML.ActivationAtlas.Gradients;

/// <summary>The outcome of <see cref="GradientFixtureCheck.Run"/>.</summary>
/// <param name="Model">The fixture's model name.</param>
/// <param name="VjpMaxRelativeError">Largest |ours - reference| of the input gradient over the largest |reference|.</param>
/// <param name="AttributionMaxRelativeError">The same for the attribution to every logit.</param>
/// <param name="LayerMaxRelativeError">The same for the forward value of the hidden layer.</param>
/// <param name="UnsupportedOperators">Operators on the paths without derivative rules (then the errors are NaN).</param>
internal sealed record GradientFixtureResult(string Model, double VjpMaxRelativeError, double AttributionMaxRelativeError,
    double LayerMaxRelativeError, IReadOnlyList<string> UnsupportedOperators);

/// <summary>
/// Checks the derivative graphs of a model against an independent reference, in the gradient-fixture format:
/// a folder with <c>model.onnx</c>, <c>meta.json</c> (<c>layer_tensor</c>, <c>position</c>, <c>input</c>,
/// <c>output</c>), and serialized TensorProto files <c>input.pb</c>, <c>layer.pb</c>, <c>layer_cotangent.pb</c>,
/// <c>input_vjp.pb</c> (seeded reverse mode from the layer to the input) and <c>attribution.pb</c>
/// (h . d(logit_k)/d(h) at <c>position</c>).
/// </summary>
internal static class GradientFixtureCheck
{
    /// <summary>Builds both graphs, runs them with ONNX Runtime and compares with the references.</summary>
    /// <param name="folder">The fixture folder.</param>
    /// <param name="sessionOptions">Session options (CPU by default).</param>
    /// <param name="doublePrecision">Evaluate the graphs in float64 (see <see cref="VjpOptions.DoublePrecision"/>).</param>
    public static GradientFixtureResult Run(string folder, OnnxSessionOptions? sessionOptions = null, bool doublePrecision = false)
    {
        string metaPath = Path.Combine(folder, "meta.json");
        if (!File.Exists(metaPath))
            throw new FileNotFoundException($"The fixture folder '{folder}' has no meta.json.", metaPath);
        using var meta = JsonDocument.Parse(File.ReadAllText(metaPath));
        var root = meta.RootElement;
        string name = root.TryGetProperty("model", out var m) ? m.GetString()! : Path.GetFileName(Path.TrimEndingDirectorySeparator(folder));
        string layer = root.GetProperty("layer_tensor").GetString()!;
        var model = OnnxModelIO.Load(Path.Combine(folder, "model.onnx"));
        string input = root.TryGetProperty("input", out var i) ? i.GetString()! : model.Graph.Input[0].Name;
        string output = root.TryGetProperty("output", out var o) ? o.GetString()! : model.Graph.Output[0].Name;
        var position = root.GetProperty("position").EnumerateArray().Select(e => e.GetInt32()).ToArray();

        var unsupported = GradientGraphBuilder.FindUnsupportedOperators(model, input, [output]);
        if (unsupported.Count > 0)
            return new GradientFixtureResult(name, double.NaN, double.NaN, double.NaN, unsupported);

        OnnxFloatTensor Load(string file) => OnnxFloatTensor.Load(Path.Combine(folder, file));
        var x = Load("input.pb");

        var vjp = GradientGraphBuilder.BuildVjp(model, new VjpOptions { Of = layer, WithRespectTo = input, DoublePrecision = doublePrecision });
        using var vjpSession = OnnxSessionFactory.Create(vjp, sessionOptions);
        var vjpOut = vjpSession.RunFloat(new Dictionary<string, OnnxFloatTensor>
        {
            [input] = x,
            ["vjp_seed"] = Load("layer_cotangent.pb"),
        }, [layer, "vjp_gradient"]);
        double layerError = RelativeError(vjpOut[layer].Data, Load("layer.pb").Data);
        double vjpError = RelativeError(vjpOut["vjp_gradient"].Data, Load("input_vjp.pb").Data);

        var attribution = AttributionGraph.Build(model, layer, output, doublePrecision);
        using var attributionSession = OnnxSessionFactory.Create(attribution, sessionOptions);
        var mask = AttributionMask(vjpOut[layer].Shape, position);
        var attributionOut = attributionSession.RunFloat(new Dictionary<string, OnnxFloatTensor>
        {
            [input] = x,
            [AttributionGraph.MaskName] = mask,
        }, [AttributionGraph.AttributionName]);
        double attributionError = RelativeError(attributionOut[AttributionGraph.AttributionName].Data, Load("attribution.pb").Data);
        return new GradientFixtureResult(name, vjpError, attributionError, layerError, []);
    }

    /// <summary>
    /// The attribution mask that selects one position in every example: [N,1,H,W] with 1 at (y, x) for a spatial
    /// layer [N,C,H,W] (position [y, x]), or [N,T,1] with 1 at the token for a token layer [N,T,C] (position [token]).
    /// </summary>
    /// <param name="layerShape">The layer's shape.</param>
    /// <param name="position">[y, x] or [token].</param>
    public static OnnxFloatTensor AttributionMask(IReadOnlyList<long> layerShape, IReadOnlyList<int> position)
    {
        ArgumentNullException.ThrowIfNull(layerShape);
        ArgumentNullException.ThrowIfNull(position);
        int n = (int)layerShape[0];
        if (layerShape.Count == 3 && position.Count == 1)
        {
            int t = (int)layerShape[1];
            if (position[0] < 0 || position[0] >= t)
                throw new ArgumentOutOfRangeException(nameof(position), $"Token {position[0]} is outside the layer's {t} tokens.");
            var tokens = new float[n * t];
            for (int i = 0; i < n; i++) tokens[i * t + position[0]] = 1f;
            return new OnnxFloatTensor(tokens, [n, t, 1]);
        }
        if (layerShape.Count != 4 || position.Count != 2)
            throw new ArgumentException($"A position [{string.Join(",", position)}] does not fit a layer shaped [{string.Join(",", layerShape)}]: "
                + "expected [y, x] for [N,C,H,W] or [token] for [N,T,C].", nameof(position));
        int h = (int)layerShape[2], w = (int)layerShape[3];
        if (position[0] < 0 || position[0] >= h || position[1] < 0 || position[1] >= w)
            throw new ArgumentOutOfRangeException(nameof(position), $"Position ({position[0]}, {position[1]}) is outside the layer's {h}x{w} grid.");
        var mask = new float[n * h * w];
        for (int i = 0; i < n; i++) mask[(i * h + position[0]) * w + position[1]] = 1f;
        return new OnnxFloatTensor(mask, [n, 1, h, w]);
    }

    /// <summary>Largest |actual - expected| over the largest |expected|.</summary>
    /// <param name="actual">Computed values.</param>
    /// <param name="expected">Reference values.</param>
    public static double RelativeError(ReadOnlySpan<float> actual, ReadOnlySpan<float> expected)
    {
        if (actual.Length != expected.Length)
            throw new ArgumentException($"Got {actual.Length} values where the reference has {expected.Length}.");
        double maxRef = 0, maxDiff = 0;
        for (int k = 0; k < expected.Length; k++)
        {
            maxRef = Math.Max(maxRef, Math.Abs(expected[k]));
            maxDiff = Math.Max(maxDiff, Math.Abs((double)actual[k] - expected[k]));
        }
        return maxRef == 0 ? (maxDiff == 0 ? 0 : double.PositiveInfinity) : maxDiff / maxRef;
    }
}
