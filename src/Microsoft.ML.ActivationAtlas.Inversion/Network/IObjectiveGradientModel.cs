using Microsoft.ML.ActivationAtlas.Inversion.Objectives;

namespace Microsoft.ML.ActivationAtlas.Inversion.Network;

/// <summary>
/// A layer model that can compute the objective's seed inside its own graph from per-icon targets, so that a
/// non-linear objective needs one network run per step instead of a forward run followed by a seeded backward run.
/// </summary>
public interface IObjectiveGradientModel : ILayerGradientModel
{
    /// <summary>Whether <see cref="BackwardObjective"/> supports this objective.</summary>
    bool SupportsObjective(ActivationObjective objective);

    /// <summary>
    /// Evaluates the layer and the gradient of the loss (minus the sum of the icons' objectives at
    /// <paramref name="position"/>) with respect to the images.
    /// </summary>
    /// <param name="objective">The objective.</param>
    /// <param name="position">
    /// The objective's position in the layer's positions per channel: <c>y * LayerWidth + x</c> for a spatial layer, the
    /// token index for a token layer (<see cref="ILayerGradientModel.Tokens"/>; patch (y, x) is token
    /// <c>PrefixTokens + y * LayerWidth + x</c>).
    /// </param>
    /// <param name="images">Images <c>[batch, 3, h, w]</c> in [0, 1].</param>
    /// <param name="batch">Batch size.</param>
    /// <param name="preparedTargets">Targets t' (<see cref="ActivationObjective.PrepareTarget"/>), <c>[batch, channels]</c>.</param>
    /// <param name="layer">Receives the layer.</param>
    /// <param name="imageGradient">Receives d(loss)/d(images).</param>
    void BackwardObjective(ActivationObjective objective, int position, ReadOnlySpan<float> images, int batch,
        ReadOnlySpan<float> preparedTargets, Span<float> layer, Span<float> imageGradient);
}
