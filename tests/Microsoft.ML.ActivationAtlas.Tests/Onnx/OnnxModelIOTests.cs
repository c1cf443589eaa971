using Microsoft.ML.ActivationAtlas.Onnx;
using Microsoft.ML.ActivationAtlas.Onnx.Protobuf;
using Microsoft.ML.ActivationAtlas.Tests.Infrastructure;

namespace Microsoft.ML.ActivationAtlas.Tests.Onnx;

public sealed class OnnxModelIOTests
{
    [Fact]
    public void ExternalDataModelLoadsAndComputesTheSameLogits()
    {
        var fx = new FixtureData("squeezenet1_1");
        var model = OnnxModelIO.Load(fx.ModelPath);
        string dir = Directory.CreateTempSubdirectory("atlas-extdata").FullName;
        try
        {
            string path = Path.Combine(dir, "model.onnx");
            OnnxModelIO.SaveWithExternalData(model, path, "weights.bin");
            Assert.True(new FileInfo(path).Length < 100_000, "weights should have moved out of the model file");
            Assert.True(new FileInfo(Path.Combine(dir, "weights.bin")).Length > 1_000_000);

            var raw = OnnxModelIO.Load(path, inlineExternalData: false);
            Assert.Contains(raw.Graph.Initializer, t => t.DataLocation == TensorProto.Types.DataLocation.External);

            var loaded = OnnxModelIO.Load(path);
            Assert.All(loaded.Graph.Initializer, t => Assert.Equal(TensorProto.Types.DataLocation.Default, t.DataLocation));
            foreach (var (a, b) in model.Graph.Initializer.Zip(loaded.Graph.Initializer))
                Assert.Equal(OnnxTensors.ToRawBytes(a), OnnxTensors.ToRawBytes(b));

            using var session = OnnxSessionFactory.Create(loaded);
            var logits = session.RunFloat(new Dictionary<string, OnnxFloatTensor> { ["input"] = fx.Input })["logits"];
            Assert.True(FixtureData.RelativeError(logits.Data, fx.Logits.Data) < 1e-4);

            File.Delete(Path.Combine(dir, "weights.bin"));
            var e = Assert.Throws<FileNotFoundException>(() => OnnxModelIO.Load(path));
            Assert.Contains("weights.bin", e.Message);
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    [Fact]
    public void TypedFloatDataConvertsToRawDataWithoutChange()
    {
        // The ResNet18 package stores its weights in float_data.
        var model = OnnxModelIO.Load(SharedData.ResNet18ModelPath);
        var w = model.Graph.Initializer.First(t => t.Dims.Count == 4);
        Assert.True(w.RawData.IsEmpty);
        Assert.NotEmpty(w.FloatData);
        float[] typed = OnnxTensors.ToFloats(w);
        var copy = w.Clone();
        OnnxTensors.ToRawStorage(copy);
        Assert.Empty(copy.FloatData);
        Assert.Equal(typed, OnnxTensors.ToFloats(copy));
        Assert.Equal(OnnxTensors.ElementCount(w.Dims), typed.Length);
    }

    [Fact]
    public void CorruptFileNamesThePath()
    {
        string path = Path.Combine(Path.GetTempPath(), $"atlas-corrupt-{Guid.NewGuid():N}.onnx");
        File.WriteAllBytes(path, [0x0a, 0xff, 0xff, 0xff, 0x01, 0x02]);
        try
        {
            var e = Assert.Throws<InvalidDataException>(() => OnnxModelIO.Load(path));
            Assert.Contains(path, e.Message);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void TensorConversionsRoundTrip()
    {
        var f = OnnxTensors.FromFloats("f", new float[] { 1.5f, -2f, 3f, 4f, 5f, 6f }, 2, 3);
        Assert.Equal(new long[] { 2, 3 }, f.Dims);
        Assert.Equal(new[] { 1.5f, -2f, 3f, 4f, 5f, 6f }, OnnxTensors.ToFloats(f));
        var l = OnnxTensors.Vector("v", 7, -1, 3);
        Assert.Equal(new long[] { 7, -1, 3 }, OnnxTensors.ToLongs(l));
        Assert.Equal(new[] { 7, -1, 3 }, OnnxTensors.ToInts(l));
        var typed = new TensorProto { Name = "t", DataType = (int)TensorProto.Types.DataType.Int64 };
        typed.Int64Data.Add([4L, 5L]);
        Assert.Equal(new[] { 4f, 5f }, OnnxTensors.ToFloats(typed));
        Assert.Throws<ArgumentException>(() => OnnxTensors.FromFloats("bad", new float[5], 2, 3));
    }
}
