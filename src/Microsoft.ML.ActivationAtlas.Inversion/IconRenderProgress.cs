namespace Microsoft.ML.ActivationAtlas.Inversion;

/// <summary>Progress of <see cref="IconRenderer.Render"/>.</summary>
/// <param name="IconsDone">Icons finished (all attempts).</param>
/// <param name="IconsTotal">Icons requested.</param>
/// <param name="Attempt">The current attempt (0-based).</param>
/// <param name="Step">Steps done in the current attempt of the current batch.</param>
/// <param name="Steps">Steps per attempt.</param>
/// <param name="MeanObjective">The batch's mean (transformed) objective at this step.</param>
public readonly record struct IconRenderProgress(int IconsDone, int IconsTotal, int Attempt, int Step, int Steps, double MeanObjective);
