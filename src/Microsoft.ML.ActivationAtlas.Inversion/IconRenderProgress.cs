namespace Microsoft.ML.ActivationAtlas.Inversion;

/// <summary>Progress of <see cref="IconRenderer.Render(IReadOnlyList{float[]}, IProgress{IconRenderProgress}?, CancellationToken)"/>.</summary>
/// <param name="IconsDone">Icons finished (all attempts).</param>
/// <param name="IconsTotal">Icons requested.</param>
/// <param name="Attempt">The attempt (0-based) of the oldest icon in the batch.</param>
/// <param name="Step">Steps that icon has done in its attempt.</param>
/// <param name="Steps">That icon's step budget per attempt.</param>
/// <param name="MeanObjective">The batch's mean (transformed) objective at this step.</param>
/// <param name="IconSteps">Icon-steps done so far over all icons and attempts.</param>
public readonly record struct IconRenderProgress(int IconsDone, int IconsTotal, int Attempt, int Step, int Steps, double MeanObjective, long IconSteps = 0);
