using Microsoft.ML.ActivationAtlas.Onnx;
using Microsoft.ML.ActivationAtlas.Onnx.Protobuf;

namespace Microsoft.ML.ActivationAtlas.Tests.Onnx;

public sealed class OnnxSessionFactoryTests
{
    private static ModelProto Identity()
    {
        var model = new ModelProto { IrVersion = 7, Graph = new GraphProto { Name = "g" } };
        model.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = 13 });
        var b = new OnnxGraphBuilder(model.Graph);
        b.Input("x", "batch", 2);
        b.Output(b.Node("Relu", ["x"]), "batch", 2);
        return model;
    }

    // Sessions default to one intra-op thread per physical core: the count from Linux's sysfs topology equals the
    // distinct (physical id, core id) pairs /proc/cpuinfo lists, capped by the processors the process may use.
    [Fact]
    [System.Runtime.Versioning.SupportedOSPlatform("linux")]
    public void DefaultThreadsAreOnePerPhysicalCore()
    {
        Assert.True(OperatingSystem.IsLinux(), "this test reads Linux's CPU topology");
        var pairs = new HashSet<string>();
        string package = "0";
        foreach (var line in File.ReadLines("/proc/cpuinfo"))
        {
            var parts = line.Split(':', 2);
            if (parts.Length != 2)
                continue;
            string key = parts[0].Trim(), value = parts[1].Trim();
            if (key == "physical id")
                package = value;
            else if (key == "core id")
                pairs.Add(package + "/" + value);
        }
        int cores = CpuTopology.PhysicalCores;
        Assert.InRange(cores, 1, Environment.ProcessorCount);
        if (pairs.Count > 0)
            Assert.Equal(Math.Min(pairs.Count, Environment.ProcessorCount), cores);
        using var session = OnnxSessionFactory.Create(Identity(), new OnnxSessionOptions());
        Assert.NotNull(session);
    }

    [Fact]
    public void CudaRequestWithoutCudaFallsBackToCpuWithAWarning()
    {
        var warnings = new List<string>();
        var options = new OnnxSessionOptions { UseCuda = true, GpuDeviceId = 0, IntraOpThreads = 1, Warning = warnings.Add };
        using var session = OnnxSessionFactory.Create(OnnxModelIO.ToBytes(Identity()), options, out string provider);
        if (provider == "CPU")
            Assert.Contains(warnings, w => w.Contains("CUDA", StringComparison.Ordinal));
        var r = session.RunFloat(new Dictionary<string, OnnxFloatTensor> { ["x"] = new([-1f, 2f], [1, 2]) });
        Assert.Equal(new[] { 0f, 2f }, r.Values.Single().Data);
    }

    [Fact]
    public void CudaRequestWithoutFallbackFailsClearlyOnCpuBuilds()
    {
        var options = new OnnxSessionOptions { UseCuda = true, FallbackToCpu = false };
        try
        {
            using var s = OnnxSessionFactory.Create(OnnxModelIO.ToBytes(Identity()), options, out string provider);
            Assert.Equal("CUDA", provider); // only reachable on a machine with working CUDA
        }
        catch (InvalidOperationException e)
        {
            Assert.Contains("CUDA", e.Message);
            Assert.Contains("OnnxRuntimeFlavor=Gpu", e.Message);
        }
    }
}
