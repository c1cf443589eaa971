using Microsoft.ML.ActivationAtlas.Gradients;
using Microsoft.ML.ActivationAtlas.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Microsoft.ML.ActivationAtlas.Tests.Gradients;

/// <summary>
/// Reverse mode (input gradient of a seeded hidden layer) and forward mode (attribution of every logit to the
/// activation vector at a position) against PyTorch float64 references on five real architectures.
/// </summary>
public sealed class FixtureConformanceTests(ITestOutputHelper output)
{
    public static TheoryData<string> Models => new(SharedData.FixtureModels);

    [Theory]
    [MemberData(nameof(Models))]
    public void VjpAndAttributionMatchReference(string model)
    {
        var result = GradientFixtureCheck.Run(Path.Combine(SharedData.GradientFixtures, model));
        output.WriteLine($"{model}: layer {result.LayerMaxRelativeError:E2} vjp {result.VjpMaxRelativeError:E2} attribution {result.AttributionMaxRelativeError:E2}");
        Assert.Empty(result.UnsupportedOperators);
        Assert.True(result.LayerMaxRelativeError < 1e-4, $"layer value error {result.LayerMaxRelativeError}");
        Assert.True(result.VjpMaxRelativeError < 1e-3, $"input gradient error {result.VjpMaxRelativeError}");
        Assert.True(result.AttributionMaxRelativeError < 1e-3, $"attribution error {result.AttributionMaxRelativeError}");
    }
}
