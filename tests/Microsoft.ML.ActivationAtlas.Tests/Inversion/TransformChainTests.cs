using Microsoft.ML.ActivationAtlas.Inversion.Transforms;

namespace Microsoft.ML.ActivationAtlas.Tests.Inversion;

/// <summary>
/// The transform chain as the renderer runs it (windows, resizes and rotations computed on the fly, crops absorbed into
/// the map before them) against the reference form (every map apart, as per-pixel tap tables): the same values,
/// forward and adjoint, on real CIFAR-10 images for many random draws.
/// </summary>
public sealed class TransformChainTests
{
    public static TheoryData<string, int, int> Chains() => new()
    {
        { "atlas", 32, 32 },
        { "atlas", 32, 48 },
        { "lucid", 32, 32 },
        { "lucid", 32, 40 },
        { "mixed", 30, 36 },
    };

    private static IReadOnlyList<ImageTransform> Transforms(string name, int size) => name switch
    {
        "atlas" => RobustnessTransforms.Atlas(size),
        "lucid" => RobustnessTransforms.LucidStandard(size),
        // Resizes up and down, crops after them, a pad after a rotation, an uneven crop-or-pad.
        _ =>
        [
            new RandomScaleTransform([0.8, 1.25]), new JitterTransform(3), new RandomRotateTransform([-13.0, 7.0, 0.0]),
            new PadTransform(2, 0.25f), new JitterTransform(5), new ResizeTransform(41, 37), new CropOrPadTransform(size - 3, size + 2),
        ],
    };

    [Theory]
    [MemberData(nameof(Chains))]
    public void AbsorbedOnTheFlyChainEqualsTheTapTables(string name, int size, int input)
    {
        var images = CifarImages.Load(CifarImages.Paths(1), size);
        int imageSize = 3 * size * size, icons = images.Length / imageSize;
        var transforms = Transforms(name, size);
        var fast = new TransformChain();
        var reference = new TransformChain { TapTables = true };
        var gradients = new Random(4);
        int absorbed = 0;
        for (int draw = 0; draw < 12; draw++)
        {
            var image = images.AsSpan(draw % icons * imageSize, imageSize);
            fast.Draw(transforms, new Random(draw), size, size, input, input);
            reference.Draw(transforms, new Random(draw), size, size, input, input);
            absorbed += reference.MapCount - fast.MapCount;
            Assert.Equal((reference.OutHeight, reference.OutWidth), (fast.OutHeight, fast.OutWidth));
            int n = 3 * fast.OutHeight * fast.OutWidth;
            var expected = new float[n];
            var actual = new float[n];
            reference.Forward(image, expected);
            fast.Forward(image, actual);
            AssertClose(expected, actual, $"{name} forward, draw {draw}");

            var g = new float[n];
            for (int i = 0; i < n; i++)
                g[i] = (float)(gradients.NextDouble() * 2 - 1);
            var expectedBack = new float[imageSize];
            var actualBack = new float[imageSize];
            reference.Adjoint(g, expectedBack);
            fast.Adjoint(g, actualBack);
            AssertClose(expectedBack, actualBack, $"{name} adjoint, draw {draw}");
        }
        Assert.True(absorbed > 0, $"{name}: no crop was absorbed in 12 draws");
    }

    private static void AssertClose(float[] expected, float[] actual, string what)
    {
        for (int i = 0; i < expected.Length; i++)
            Assert.True(Math.Abs(expected[i] - actual[i]) <= 1e-6f * Math.Max(1f, Math.Abs(expected[i])),
                $"{what}: value {i} is {actual[i]}, the tap tables give {expected[i]}");
    }
}
