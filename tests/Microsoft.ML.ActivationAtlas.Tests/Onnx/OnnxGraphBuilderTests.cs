using Microsoft.ML.ActivationAtlas.Onnx;
using Microsoft.ML.ActivationAtlas.Onnx.Protobuf;

namespace Microsoft.ML.ActivationAtlas.Tests.Onnx;

public sealed class OnnxGraphBuilderTests
{
    [Fact]
    public void BuiltGraphRunsAndNamesAreUnique()
    {
        var model = new ModelProto { IrVersion = 7, Graph = new GraphProto { Name = "g" } };
        model.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = 13 });
        var b = new OnnxGraphBuilder(model.Graph);
        b.Input("x", "batch", 3);
        string two = b.Constant("c", 2f);
        string three = b.Constant("c", 3f);
        Assert.NotEqual(two, three);
        string y = b.Node("Mul", ["x", two]);
        string z = b.Node("Add", [y, three]);
        string axes = b.Vector("axes", 1);
        string s = b.Node("ReduceSum", [z, axes], OnnxAttributes.Int("keepdims", 0));
        b.Output(s, "batch");

        var names = model.Graph.Node.SelectMany(n => n.Output).Concat(model.Graph.Initializer.Select(t => t.Name)).ToList();
        Assert.Equal(names.Count, names.Distinct().Count());

        using var session = OnnxSessionFactory.Create(model);
        var r = session.RunFloat(new Dictionary<string, OnnxFloatTensor>
        {
            ["x"] = new(new float[] { 1, 2, 3, -1, 0, 1 }, [2, 3]),
        })[s];
        Assert.Equal(new long[] { 2 }, r.Shape);
        Assert.Equal(new[] { 2f * 6 + 9, 0f + 9 }, r.Data);
    }
}
