using Microsoft.ML.ActivationAtlas.Binning;
using Microsoft.ML.ActivationAtlas.Rendering;
using Microsoft.ML.ActivationAtlas.Tests.Binning;

namespace Microsoft.ML.ActivationAtlas.Tests.Rendering;

/// <summary>An atlas of 1,000 CIFAR-10 test images (colour layout, one-hot attribution) with their nearest-example icons.</summary>
public sealed class CifarAtlasFixture
{
    public CifarAtlasFixture()
    {
        var ml = new MLContext(1);
        Rows = CifarRows.Load(100);
        var data = ml.Data.LoadFromEnumerable(Rows);
        var transformed = ml.Transforms.BinToGrid("GridCell", "Layout", 10, 20, 40).Fit(data).Transform(data);
        Atlas = ml.Data.AggregateAtlas(transformed, new AtlasAggregationOptions
        {
            AttributionColumnName = "Attribution",
            ClassNames = CifarRows.ClassNames,
            TopClasses = 3,
            Examples = 4,
        });
        Icons = AtlasIcons.FromNearestExamples(Atlas, row => Rows[row].Path, 32);
    }

    internal CifarRow[] Rows { get; }

    public GridAtlas Atlas { get; }

    public AtlasIcons Icons { get; }
}
