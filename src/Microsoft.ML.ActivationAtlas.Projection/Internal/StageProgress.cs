namespace Microsoft.ML.ActivationAtlas.Projection.Internal;

/// <summary>Forwards a stage's fraction done to the caller's progress, synchronously (no context posting).</summary>
internal sealed class StageProgress(IProgress<ProjectionProgress> outer, string stage) : IProgress<double>
{
    public void Report(double value) => outer.Report(new ProjectionProgress(stage, value));

    public static IProgress<double>? For(IProgress<ProjectionProgress>? outer, string stage) => outer is null ? null : new StageProgress(outer, stage);
}
