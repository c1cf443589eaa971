using System.Text.Json;
using Microsoft.ML.ActivationAtlas.Onnx;
using Microsoft.ML.ActivationAtlas.Tests.Infrastructure;

namespace Microsoft.ML.ActivationAtlas.Tests.Onnx;

/// <summary>One gradient-conformance fixture: model path, metadata and reference tensors.</summary>
internal sealed class FixtureData
{
    public FixtureData(string model)
    {
        Folder = Path.Combine(SharedData.GradientFixtures, model);
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(Folder, "meta.json")));
        LayerTensor = doc.RootElement.GetProperty("layer_tensor").GetString()!;
        LayerModule = doc.RootElement.GetProperty("layer_module").GetString()!;
        LayerShape = doc.RootElement.GetProperty("layer_shape").EnumerateArray().Select(e => e.GetInt64()).ToArray();
    }

    public string Folder { get; }
    public string ModelPath => Path.Combine(Folder, "model.onnx");
    public string LayerTensor { get; }
    public string LayerModule { get; }
    public long[] LayerShape { get; }
    public OnnxFloatTensor Input => OnnxFloatTensor.Load(Path.Combine(Folder, "input.pb"));
    public OnnxFloatTensor Layer => OnnxFloatTensor.Load(Path.Combine(Folder, "layer.pb"));
    public OnnxFloatTensor Logits => OnnxFloatTensor.Load(Path.Combine(Folder, "logits.pb"));

    /// <summary>Largest |actual - expected| relative to the largest |expected|.</summary>
    public static double RelativeError(ReadOnlySpan<float> actual, ReadOnlySpan<float> expected)
    {
        Assert.Equal(expected.Length, actual.Length);
        double maxRef = 0, maxDiff = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            maxRef = Math.Max(maxRef, Math.Abs(expected[i]));
            maxDiff = Math.Max(maxDiff, Math.Abs(actual[i] - expected[i]));
        }
        Assert.True(maxRef > 0, "reference tensor is all zeros");
        return maxDiff / maxRef;
    }
}
