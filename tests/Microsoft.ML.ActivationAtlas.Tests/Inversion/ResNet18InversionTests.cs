using Microsoft.ML.ActivationAtlas.Inversion;
using Microsoft.ML.ActivationAtlas.Inversion.Network;
using Microsoft.ML.ActivationAtlas.Inversion.Objectives;
using Microsoft.ML.ActivationAtlas.Inversion.Transforms;
using Microsoft.ML.ActivationAtlas.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Microsoft.ML.ActivationAtlas.Tests.Inversion;

/// <summary>Icon fidelity on the real ImageNet ResNet18 for directions that are means of real CIFAR-10 activations.</summary>
public sealed class ResNet18InversionTests(ITestOutputHelper output)
{
    // The last 7x7 block (7x7 at 224 px). CIFAR-10 images are run at their native 32 px, where this layer is 1x1.
    private const string Layer = "ReLU393_Output_0";
    private const int Size = 32;

    [Fact]
    public void IconsOfKMeansCentroidsMatchTheirDirectionsAtLeastAsWellAsTheGroupsOwnMembers()
    {
        using var model = OnnxLayerGradientModel.Load(SharedData.ResNet18ModelPath, Layer, new OnnxLayerModelOptions
        {
            InputSize = Size,
            Normalization = MeanImagePreprocessing.Load(SharedData.ResNet18PreprocessPath, Size),
        });
        int c = model.LayerChannels, h = model.LayerHeight, w = model.LayerWidth;
        Assert.Equal((512, 1, 1), (c, h, w));

        // 500 real images (50 per class) -> activation vectors -> 64 k-means groups; the targets are the group means.
        var paths = CifarImages.Paths(50);
        var images = CifarImages.Load(paths, Size);
        var layer = new float[paths.Count * c * h * w];
        model.Forward(images, paths.Count, layer);
        var acts = CifarImages.At(layer, paths.Count, c, h, w, h / 2, w / 2);
        var points = Enumerable.Range(0, paths.Count).Select(i => acts.AsSpan(i * c, c).ToArray()).ToList();
        var (centroids, assignment) = KMeans.Fit(points, 64, seed: 5);
        double memberMedian = OnnxInversionTests.Median(points.Select((p, i) => ActivationObjective.Cosine(p, centroids[assignment[i]])));
        // Floor: a random real image (not of the group) against each target.
        var random = new Random(6);
        double floorMedian = OnnxInversionTests.Median(centroids.Select((t, j) =>
        {
            int i;
            do i = random.Next(points.Count); while (assignment[i] == j);
            return ActivationObjective.Cosine(points[i], t);
        }));

        // Fewer steps than the 512 default keep the test short. lucid's standard transforms: the atlas list (pad 16,
        // 34 px of jitter) is sized for 80 px icons and would move most of a 32 px icon out of the frame.
        var icons = new IconRenderer(model, new IconRenderOptions
        {
            Size = Size,
            Steps = 48,
            Attempts = 1,
            BatchSize = 64,
            Seed = 7,
            Transforms = RobustnessTransforms.LucidStandard(Size),
        }).Render(centroids);
        double iconMedian = OnnxInversionTests.Median(icons.Select(i => i.Fidelity));
        output.WriteLine($"median icon fidelity {iconMedian:F3}; median member-to-mean cosine {memberMedian:F3}; median random-image cosine {floorMedian:F3}");
        Assert.True(iconMedian >= memberMedian, $"icon fidelity {iconMedian:F3} < member cosine {memberMedian:F3} (random images: {floorMedian:F3})");
        Assert.True(memberMedian > floorMedian + 0.2, "the groups are tighter than random pairs (sanity of the comparison)");
    }
}
