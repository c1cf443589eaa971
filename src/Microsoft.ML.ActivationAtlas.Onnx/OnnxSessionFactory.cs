using Microsoft.ML.ActivationAtlas.Onnx.Protobuf;
using Microsoft.ML.OnnxRuntime;

namespace Microsoft.ML.ActivationAtlas.Onnx;

/// <summary>Creates ONNX Runtime sessions according to <see cref="OnnxSessionOptions"/>.</summary>
public static class OnnxSessionFactory
{
    /// <summary>Creates a session for a model.</summary>
    /// <param name="model">The model.</param>
    /// <param name="options">Execution options; null for the defaults (CPU).</param>
    public static InferenceSession Create(ModelProto model, OnnxSessionOptions? options = null) =>
        Create(OnnxModelIO.ToBytes(model), options, out _);

    /// <summary>Creates a session for a serialized model.</summary>
    /// <param name="modelBytes">The serialized model.</param>
    /// <param name="options">Execution options; null for the defaults (CPU).</param>
    public static InferenceSession Create(byte[] modelBytes, OnnxSessionOptions? options = null) =>
        Create(modelBytes, options, out _);

    /// <summary>Creates a session for a serialized model and reports the provider it runs on.</summary>
    /// <param name="modelBytes">The serialized model.</param>
    /// <param name="options">Execution options; null for the defaults (CPU).</param>
    /// <param name="executionProvider"><c>"CUDA"</c> or <c>"CPU"</c>.</param>
    /// <exception cref="InvalidOperationException">CUDA was requested, is unavailable and fallback is off.</exception>
    public static InferenceSession Create(byte[] modelBytes, OnnxSessionOptions? options, out string executionProvider)
    {
        ArgumentNullException.ThrowIfNull(modelBytes);
        options ??= new OnnxSessionOptions();
        if (options.UseCuda)
        {
            SessionOptions? so = null;
            try
            {
                so = BuildOptions(options);
                so.AppendExecutionProvider_CUDA(options.GpuDeviceId);
                var session = new InferenceSession(modelBytes, so);
                executionProvider = "CUDA";
                return session;
            }
            catch (Exception e) when (e is OnnxRuntimeException or EntryPointNotFoundException or DllNotFoundException)
            {
                if (!options.FallbackToCpu)
                    throw new InvalidOperationException(
                        $"The CUDA execution provider (device {options.GpuDeviceId}) is unavailable: {e.Message} " +
                        "Build with -p:OnnxRuntimeFlavor=Gpu and install CUDA and cuDNN, or allow the CPU fallback.", e);
                (options.Warning ?? (m => Console.Error.WriteLine(m)))(
                    $"warning: CUDA execution provider (device {options.GpuDeviceId}) unavailable, running on the CPU: {FirstLine(e.Message)}");
            }
            finally
            {
                so?.Dispose();
            }
        }
        using var cpu = BuildOptions(options);
        executionProvider = "CPU";
        return new InferenceSession(modelBytes, cpu);
    }

    private static SessionOptions BuildOptions(OnnxSessionOptions options)
    {
        var so = new SessionOptions
        {
            GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL,
            ExecutionMode = ExecutionMode.ORT_SEQUENTIAL,
            LogSeverityLevel = OrtLoggingLevel.ORT_LOGGING_LEVEL_ERROR,
        };
        int threads = options.IntraOpThreads > 0 ? options.IntraOpThreads : CpuTopology.PhysicalCores;
        if (threads > 0)
            so.IntraOpNumThreads = threads;
        so.AddSessionConfigEntry("session.intra_op.allow_spinning", options.AllowSpinning ? "1" : "0");
        so.AddSessionConfigEntry("session.inter_op.allow_spinning", options.AllowSpinning ? "1" : "0");
        return so;
    }

    private static string FirstLine(string s)
    {
        int i = s.IndexOf('\n');
        return i < 0 ? s : s[..i];
    }
}
