using System.Text.Json.Serialization;

namespace Microsoft.ML.ActivationAtlas.Onnx;

/// <summary>
/// Where and how ONNX Runtime runs a model. The defaults run on the CPU with ONNX Runtime's own thread count. Saved
/// pipelines keep every setting (as JSON, through <c>System.Text.Json</c>) except <see cref="Warning"/>.
/// </summary>
public sealed class OnnxSessionOptions
{
    /// <summary>
    /// Run on the CUDA execution provider (needs the <c>Microsoft.ML.OnnxRuntime.Gpu</c> package, i.e. a build with
    /// <c>-p:OnnxRuntimeFlavor=Gpu</c>, and CUDA/cuDNN libraries). Default false (CPU).
    /// </summary>
    public bool UseCuda { get; set; }

    /// <summary>The CUDA device id when <see cref="UseCuda"/> is set. Default 0.</summary>
    public int GpuDeviceId { get; set; }

    /// <summary>
    /// When CUDA cannot be used (package without CUDA, missing libraries, no device), run on the CPU and report a
    /// warning instead of failing. Default true.
    /// </summary>
    public bool FallbackToCpu { get; set; } = true;

    /// <summary>
    /// Threads ONNX Runtime uses inside one operator; 0 (the default) means one per physical core the process may use
    /// (counted from the CPU topology on Linux; elsewhere ONNX Runtime's own count).
    /// </summary>
    public int IntraOpThreads { get; set; }

    /// <summary>
    /// Whether ONNX Runtime's idle worker threads spin waiting for work. Spinning lowers latency but burns CPU that
    /// other work sharing the machine (image decoding, other pipelines) needs; default false
    /// (<c>session.intra_op.allow_spinning = 0</c>).
    /// </summary>
    public bool AllowSpinning { get; set; }

    /// <summary>Receives warnings such as a CUDA fallback. Default: written to standard error.</summary>
    [JsonIgnore]
    public Action<string>? Warning { get; set; }

    /// <summary>A copy of these options.</summary>
    public OnnxSessionOptions Clone() => (OnnxSessionOptions)MemberwiseClone();
}
