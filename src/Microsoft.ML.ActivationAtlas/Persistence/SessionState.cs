using Microsoft.ML.ActivationAtlas.Onnx;

namespace Microsoft.ML.ActivationAtlas.Persistence;

/// <summary>
/// The ONNX Runtime session settings as saved with a stage's state: every setting but the warning callback, so a
/// loaded stage runs where and how the saved one did.
/// </summary>
internal sealed class SessionState
{
    public bool UseCuda { get; set; }

    public int GpuDeviceId { get; set; }

    public bool FallbackToCpu { get; set; } = true;

    public int IntraOpThreads { get; set; }

    public bool AllowSpinning { get; set; }

    public static SessionState Of(OnnxSessionOptions o) => new()
    {
        UseCuda = o.UseCuda,
        GpuDeviceId = o.GpuDeviceId,
        FallbackToCpu = o.FallbackToCpu,
        IntraOpThreads = o.IntraOpThreads,
        AllowSpinning = o.AllowSpinning,
    };

    public OnnxSessionOptions ToOptions() => new()
    {
        UseCuda = UseCuda,
        GpuDeviceId = GpuDeviceId,
        FallbackToCpu = FallbackToCpu,
        IntraOpThreads = IntraOpThreads,
        AllowSpinning = AllowSpinning,
    };
}
