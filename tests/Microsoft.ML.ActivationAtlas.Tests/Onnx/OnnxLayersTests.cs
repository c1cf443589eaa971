using Microsoft.ML.ActivationAtlas.Onnx;
using Microsoft.ML.ActivationAtlas.Tests.Infrastructure;

namespace Microsoft.ML.ActivationAtlas.Tests.Onnx;

public sealed class OnnxLayersTests
{
    public static TheoryData<string> Models => new(SharedData.FixtureModels);

    [Theory]
    [MemberData(nameof(Models))]
    public void ProbeFindsTheFixtureLayerWithItsShapeOpAndFriendlyName(string name)
    {
        var fx = new FixtureData(name);
        var model = OnnxModelIO.Load(fx.ModelPath);
        var all = OnnxLayers.Probe(model);
        var layers = all.Where(l => l.IsSelectable).ToList();
        Assert.All(layers, l => Assert.Equal(4, l.Shape.Length));
        var layer = Assert.Single(layers, l => l.Name == fx.LayerTensor);
        Assert.Equal(fx.LayerShape[1..], layer.Shape[1..]);
        Assert.Equal(model.Graph.Node.First(n => n.Output.Contains(fx.LayerTensor)).OpType, layer.OpType);
        Assert.Equal(fx.LayerModule, layer.FriendlyName);
        Assert.Same(layer, OnnxLayers.Resolve(all, layer.FriendlyName!));
        Assert.DoesNotContain(layers, l => l.Name == "logits");
    }

    [Fact]
    public void ResolveSuggestsClosestNamesAndRejectsNon4DTensors()
    {
        var all = OnnxLayers.Probe(OnnxModelIO.Load(new FixtureData("googlenet").ModelPath));
        var e = Assert.Throws<ArgumentException>(() => OnnxLayers.Resolve(all, "inception4x"));
        Assert.Contains("no layer 'inception4x'", e.Message);
        Assert.Contains("inception4c", e.Message);
        var flat = all.First(l => l.Shape.Length == 2);
        var e2 = Assert.Throws<ArgumentException>(() => OnnxLayers.Resolve(all, flat.Name));
        Assert.Contains("2-D", e2.Message);
        Assert.Contains("4-D", e2.Message);
    }

    [Fact]
    public void ResNet18LayersIncludeTheAtlasLayer()
    {
        var layers = OnnxLayers.List(OnnxModelIO.Load(SharedData.ResNet18ModelPath));
        var relu = Assert.Single(layers, l => l.Name == "ReLU393_Output_0");
        Assert.Equal("Relu", relu.OpType);
        Assert.Equal(new long[] { 1, 512, 7, 7 }, relu.Shape);
        Assert.Equal("Pooling395_Output_0", layers[^1].Name);
    }
}
