using Microsoft.ML.ActivationAtlas.Extraction;
using Microsoft.ML.ActivationAtlas.Onnx;
using Microsoft.ML.ActivationAtlas.Tests.Extraction;
using Microsoft.ML.OnnxRuntime;

namespace Microsoft.ML.ActivationAtlas.Tests.Onnx;

/// <summary>
/// ResNet18 activations of CIFAR-10 images with CUDA requested, against the CPU, under whichever ONNX Runtime package
/// the tests were built with. With the GPU package (<c>-p:OnnxRuntimeFlavor=Gpu</c>, as <c>.ci/gpu-fallback</c> builds
/// them) on a machine without the CUDA libraries, the documented fallback: a warning naming CUDA, and the CPU's
/// results; with CUDA present, CUDA's results within a float32 tolerance of the CPU's.
/// <c>ATLAS_EXPECT_ORT_FLAVOR=Gpu</c> makes the test fail unless the GPU package is the one loaded.
/// </summary>
public sealed class OnnxRuntimeFlavorTests
{
    [Fact]
    public void CudaRequestGivesTheCpuResultsOrFallsBackWithAWarning()
    {
        bool gpuPackage = OrtEnv.Instance().GetAvailableProviders().Contains("CUDAExecutionProvider");
        if (Environment.GetEnvironmentVariable("ATLAS_EXPECT_ORT_FLAVOR") == "Gpu")
            Assert.True(gpuPackage, "the tests were expected to run on Microsoft.ML.OnnxRuntime.Gpu, but its CUDA provider is not in the loaded ONNX Runtime");

        var ml = new MLContext(seed: 1);
        var images = ExtractionData.Cifar(ml, perClass: 1);
        var warnings = new List<string>();
        (List<float[]> Values, string Provider) Extract(bool cuda)
        {
            var t = ml.Transforms.ExtractActivations(new ActivationExtractingEstimator.Options
            {
                Model = PretrainedModels.ResNet18,
                Layers = ["ReLU393_Output_0"],
                Sampling = ActivationSampling.SpatialMean,
                Session = new OnnxSessionOptions { UseCuda = cuda, Warning = warnings.Add },
            }).Fit(images);
            return (ExtractionData.Column(t.Transform(images), AtlasColumnNames.Activation), t.ExecutionProvider);
        }
        var (cpu, cpuProvider) = Extract(cuda: false);
        Assert.Equal("CPU", cpuProvider);
        Assert.Empty(warnings);
        var (requested, provider) = Extract(cuda: true);
        if (provider == "CPU")
        {
            Assert.Contains(warnings, w => w.Contains("CUDA execution provider", StringComparison.Ordinal) && w.Contains("running on the CPU", StringComparison.Ordinal));
            Assert.True(ExtractionData.MaxRelativeError(requested, cpu) < 1e-6, "the fallback gives the CPU's activations");
        }
        else
        {
            Assert.Equal("CUDA", provider);
            Assert.True(gpuPackage);
            Assert.True(ExtractionData.MaxRelativeError(requested, cpu) < 1e-3, "CUDA activations differ from the CPU's by more than 1e-3 of the largest");
        }
    }
}
