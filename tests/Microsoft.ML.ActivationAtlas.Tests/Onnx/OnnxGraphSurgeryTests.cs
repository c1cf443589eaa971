using Microsoft.ML.ActivationAtlas.Onnx;
using Microsoft.ML.ActivationAtlas.Tests.Infrastructure;

namespace Microsoft.ML.ActivationAtlas.Tests.Onnx;

public sealed class OnnxGraphSurgeryTests
{
    public static TheoryData<string> Models => new(SharedData.FixtureModels);

    [Theory]
    [MemberData(nameof(Models))]
    public void ExposedLayerMatchesTheReferenceActivations(string name)
    {
        var fx = new FixtureData(name);
        var model = OnnxGraphSurgery.ExposeOutputs(OnnxModelIO.Load(fx.ModelPath), [fx.LayerTensor]);
        using var session = OnnxSessionFactory.Create(model);
        var r = session.RunFloat(new Dictionary<string, OnnxFloatTensor> { ["input"] = fx.Input });
        Assert.Equal(fx.Layer.Shape, r[fx.LayerTensor].Shape);
        Assert.True(FixtureData.RelativeError(r[fx.LayerTensor].Data, fx.Layer.Data) < 1e-4);
        Assert.True(FixtureData.RelativeError(r["logits"].Data, fx.Logits.Data) < 1e-3);
    }

    [Theory]
    [InlineData("squeezenet1_1")]
    [InlineData("mobilenet_v2")]
    [InlineData("shufflenet_v2_x0_5")]
    public void CutHalvesComposeToTheWholeModel(string name)
    {
        var fx = new FixtureData(name);
        var model = OnnxModelIO.Load(fx.ModelPath);
        var shapes = new Dictionary<string, long[]> { [fx.LayerTensor] = fx.LayerShape };
        var head = OnnxGraphSurgery.CutInputToLayer(model, fx.LayerTensor, shapes);
        var tail = OnnxGraphSurgery.CutLayerToOutputs(model, fx.LayerTensor, shapes);
        Assert.Equal(["input"], head.Graph.Input.Select(i => i.Name));
        Assert.Equal([fx.LayerTensor], head.Graph.Output.Select(o => o.Name));
        var tailInput = Assert.Single(tail.Graph.Input);
        Assert.Equal(fx.LayerTensor, tailInput.Name);
        Assert.Equal(fx.LayerTensor + "_batch", tailInput.Type.TensorType.Shape.Dim[0].DimParam);
        Assert.True(head.Graph.Node.Count + tail.Graph.Node.Count <= model.Graph.Node.Count + 8);

        using var hs = OnnxSessionFactory.Create(head);
        using var ts = OnnxSessionFactory.Create(tail);
        var layer = hs.RunFloat(new Dictionary<string, OnnxFloatTensor> { ["input"] = fx.Input })[fx.LayerTensor];
        Assert.True(FixtureData.RelativeError(layer.Data, fx.Layer.Data) < 1e-4);
        var logits = ts.RunFloat(new Dictionary<string, OnnxFloatTensor> { [fx.LayerTensor] = fx.Layer })["logits"];
        Assert.True(FixtureData.RelativeError(logits.Data, fx.Logits.Data) < 1e-3);
    }

    [Fact]
    public void CutInsideAResidualBlockAddsTheSkipTensorAsAnInput()
    {
        var model = OnnxModelIO.Load(SharedData.ResNet18ModelPath);
        // ReLU261 is inside the first residual block; the skip connection carries Pooling255_Output_0 around it.
        var tail = OnnxGraphSurgery.CutLayerToOutputs(model, "ReLU261_Output_0");
        Assert.Equal(["ReLU261_Output_0", "Pooling255_Output_0"], tail.Graph.Input.Select(i => i.Name).Where(n => !n.StartsWith("Parameter") && !n.StartsWith("Constant")));
    }

    [Fact]
    public void BatchDynamicResNetRunsABatchAndChainsWithItsPreprocessing()
    {
        var net = OnnxGraphSurgery.MakeBatchDynamic(OnnxModelIO.Load(SharedData.ResNet18ModelPath));
        var prep = OnnxGraphSurgery.MakeBatchDynamic(OnnxModelIO.Load(SharedData.ResNet18PreprocessPath));
        var chained = OnnxGraphSurgery.Chain(prep, net);
        Assert.Equal(["OriginalInput"], OnnxGraphSurgery.RealInputs(chained.Graph));
        var rng = new Random(3);
        var x = new float[3 * 3 * 224 * 224];
        for (int i = 0; i < x.Length; i++) x[i] = rng.Next(256);
        using var chainedSession = OnnxSessionFactory.Create(chained);
        var batched = chainedSession.RunFloat(new Dictionary<string, OnnxFloatTensor> { ["OriginalInput"] = new(x, [3, 3, 224, 224]) }).Values.Single();
        Assert.Equal(new long[] { 3, 512, 1, 1 }, batched.Shape);

        using var prepSession = OnnxSessionFactory.Create(prep);
        using var netSession = OnnxSessionFactory.Create(net);
        var one = x.AsSpan(2 * 3 * 224 * 224).ToArray();
        var pre = prepSession.RunFloat(new Dictionary<string, OnnxFloatTensor> { ["OriginalInput"] = new(one, [1, 3, 224, 224]) }).Values.Single();
        var single = netSession.RunFloat(new Dictionary<string, OnnxFloatTensor> { ["Input247"] = pre }).Values.Single();
        Assert.True(FixtureData.RelativeError(batched.Data.AsSpan(2 * 512), single.Data) < 1e-4);
    }
}
