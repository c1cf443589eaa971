namespace Microsoft.ML.ActivationAtlas.Gradients.Rules;

/// <summary>The derivative rules by ONNX operator type (default domain).</summary>
internal sealed class RuleTable
{
    private readonly Dictionary<string, VjpRule> _vjp = new(StringComparer.Ordinal);
    private readonly Dictionary<string, JvpRule> _jvp = new(StringComparer.Ordinal);

    /// <summary>Every rule of this library.</summary>
    public static RuleTable Default { get; } = CreateDefault();

    /// <summary>Operators whose outputs never carry a derivative (shapes, comparisons, indices, constants).</summary>
    public static IReadOnlySet<string> NonDifferentiable { get; } = new HashSet<string>(StringComparer.Ordinal)
    {
        "Shape", "Size", "Constant", "ConstantOfShape", "Equal", "Greater", "Less", "GreaterOrEqual", "LessOrEqual",
        "Not", "And", "Or", "Xor", "ArgMax", "ArgMin", "NonZero", "Range", "Floor", "Ceil", "Round", "Sign",
        "RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike", "EyeLike", "IsNaN", "IsInf",
    };

    public void Add(string opType, VjpRule vjp, JvpRule jvp)
    {
        _vjp[opType] = vjp;
        _jvp[opType] = jvp;
    }

    public VjpRule? Vjp(string opType) => _vjp.GetValueOrDefault(opType);

    public JvpRule? Jvp(string opType) => _jvp.GetValueOrDefault(opType);

    public IEnumerable<string> Operators => _vjp.Keys.Order(StringComparer.Ordinal);

    private static RuleTable CreateDefault()
    {
        var t = new RuleTable();
        ConvRules.Register(t);
        PoolingRules.Register(t);
        ActivationRules.Register(t);
        ElementwiseRules.Register(t);
        NormalizationRules.Register(t);
        LinearRules.Register(t);
        ReductionRules.Register(t);
        ShapeRules.Register(t);
        TensorRules.Register(t);
        SamplingRules.Register(t);
        return t;
    }
}
