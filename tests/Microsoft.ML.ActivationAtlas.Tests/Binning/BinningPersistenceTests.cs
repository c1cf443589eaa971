using Microsoft.ML.ActivationAtlas.Binning;
using Microsoft.ML.ActivationAtlas.ClassAtlas;
using Microsoft.ML.ActivationAtlas.Persistence;
using Microsoft.ML.Data;

namespace Microsoft.ML.ActivationAtlas.Tests.Binning;

public sealed class BinningPersistenceTests
{
    [Fact]
    public void SavedPipelineWithGridAndClassDifferenceGivesTheSameCellsAfterLoading()
    {
        var ml = new MLContext(1);
        var rows = CifarRows.Load(50);
        var data = ml.Data.LoadFromEnumerable(rows);
        // ML.NET stages around the atlas stages: they are saved by ML.NET, ours by SaveAtlas.
        var pipeline = ml.Transforms.CopyColumns("LayoutCopy", "Layout")
            .Append(ml.Transforms.BinToGrid(new BinToGridEstimator.Options { InputColumnName = "LayoutCopy", GridSizes = [10, 20, 40], LowPercentile = 2, HighPercentile = 97, Margin = 0.05f }))
            .Append(ml.Transforms.ClassDifference("CatVsDog", "Attribution", 3, 5))
            .Append(ml.Transforms.NormalizeMinMax("Scaled", "Activation"));
        var model = pipeline.Fit(data);
        string path = Path.Combine(Path.GetTempPath(), $"atlas-binning-{Guid.NewGuid():N}.zip");
        try
        {
            ml.Model.SaveAtlas(model, data.Schema, path);
            var fresh = new MLContext(2);
            var loaded = fresh.Model.LoadAtlas(path, out var schema);
            Assert.NotNull(schema.GetColumnOrNull("Layout"));

            var subset = fresh.Data.LoadFromEnumerable(rows.Where((_, i) => i % 7 == 0));
            var expected = model.Transform(ml.Data.LoadFromEnumerable(rows.Where((_, i) => i % 7 == 0)));
            var actual = loaded.Transform(subset);
            Assert.Equal(expected.GetColumn<int[]>("GridCell").ToArray(), actual.GetColumn<int[]>("GridCell").ToArray());
            Assert.Equal(expected.GetColumn<float[]>("GridPosition").ToArray(), actual.GetColumn<float[]>("GridPosition").ToArray());
            Assert.Equal(expected.GetColumn<float>("CatVsDog").ToArray(), actual.GetColumn<float>("CatVsDog").ToArray());

            // The loaded grid keeps its fitted bounds and sizes, so histograms and atlases line up.
            var grid = ((IEnumerable<ITransformer>)loaded).OfType<BinToGridTransformer>().Single();
            var original = ((IEnumerable<ITransformer>)model).OfType<BinToGridTransformer>().Single();
            Assert.Equal(original.Normalization.MinX, grid.Normalization.MinX);
            Assert.Equal(original.Normalization.MaxY, grid.Normalization.MaxY);
            Assert.Equal([10, 20, 40], grid.Levels.Sizes);
            Assert.Equal(fresh.Data.ConceptHistogram(actual).Counts(40).ToArray(), ml.Data.ConceptHistogram(expected).Counts(40).ToArray());
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void GridTransformerRefusesMlNetSaveWithAPointerToSaveAtlas()
    {
        var ml = new MLContext(1);
        var data = ml.Data.LoadFromEnumerable(CifarRows.Load(5));
        var model = ml.Transforms.BinToGrid().Fit(data);
        using var ms = new MemoryStream();
        var e = Assert.ThrowsAny<Exception>(() => ml.Model.Save(model, data.Schema, ms));
        for (var inner = e; inner is not null; inner = inner.InnerException)
            if (inner is NotSupportedException)
            {
                Assert.Contains("SaveAtlas", inner.Message);
                return;
            }
        Assert.Fail($"expected a NotSupportedException naming SaveAtlas, got {e}");
    }
}
