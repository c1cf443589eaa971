using Microsoft.ML.ActivationAtlas.Gradients.Internal;
using static Microsoft.ML.ActivationAtlas.Onnx.OnnxAttributes;

namespace Microsoft.ML.ActivationAtlas.Gradients;

internal sealed class ChannelObjective(int channel) : FeatureObjective
{
    internal override string Emit(GraphEmitter g, string tensor)
    {
        string slice = g.Emit("Slice", [tensor, g.Int64s(channel), g.Int64s(channel + 1L), g.Int64s(1)]);
        return g.ReduceMean(g.Emit("Flatten", [slice], Int("axis", 1)), [1], keepDims: false);
    }
}

internal sealed class NeuronObjective(int channel, int y, int x) : FeatureObjective
{
    internal override string Emit(GraphEmitter g, string tensor)
    {
        string slice = g.Emit("Slice", [tensor, g.Int64s(channel, y, x), g.Int64s(channel + 1L, y + 1L, x + 1L), g.Int64s(1, 2, 3)]);
        return g.ReduceSum(g.Emit("Flatten", [slice], Int("axis", 1)), [1], keepDims: false);
    }
}

internal sealed class DirectionObjective(float[] direction) : FeatureObjective
{
    internal override string Emit(GraphEmitter g, string tensor)
    {
        // Mean over positions of the dot product = dot product with the mean vector.
        string perChannel = g.ReduceMean(g.Emit("Flatten", [tensor], Int("axis", 2)), [1], keepDims: false);
        string vectors = g.Reshape(perChannel, g.Int64s(-1, direction.Length));
        string dot = g.Emit("MatMul", [vectors, g.FloatTensor(direction, [direction.Length, 1])]);
        return g.Reshape(dot, g.Int64s(-1));
    }
}

internal sealed class DirectionCosineObjective(float[] direction, float power, float floor, int? y, int? x) : FeatureObjective
{
    internal override string Emit(GraphEmitter g, string tensor)
    {
        int c = direction.Length;
        string shape = g.Shape(tensor);
        string Position(int? fixedValue, long axis) => fixedValue is { } v
            ? g.Int64s(v)
            : g.Emit("Div", [g.Emit("Gather", [shape, g.Int64s(axis)], Int("axis", 0)), g.Int64s(2)]);
        string starts = g.Emit("Concat", [Position(y, 2), Position(x, 3)], Int("axis", 0));
        string ends = g.Add(starts, g.Int64s(1, 1));
        string vectors = g.Emit("Flatten", [g.Emit("Slice", [tensor, starts, ends, g.Int64s(2, 3)])], Int("axis", 1)); // [N,C]
        string dot = g.Emit("MatMul", [vectors, g.FloatTensor(direction, [c, 1])]); // [N,1]
        double norm = Math.Sqrt(direction.Sum(v => (double)v * v));
        string magnitude = g.Emit("Sqrt", [g.ReduceSum(g.Mul(vectors, vectors), [1], keepDims: true)]);
        string cosine = g.Div(dot, g.Add(g.Mul(magnitude, g.FloatScalar((float)norm)), g.FloatScalar(1e-4f)));
        string floored = g.Emit("Max", [cosine, g.FloatScalar(floor)]);
        string objective = power == 0f ? dot : g.Mul(dot, g.Emit("Pow", [floored, g.FloatScalar(power)]));
        return g.Reshape(objective, g.Int64s(-1));
    }
}
