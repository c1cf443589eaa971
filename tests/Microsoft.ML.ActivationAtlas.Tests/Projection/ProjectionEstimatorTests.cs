using Microsoft.ML;
using Microsoft.ML.ActivationAtlas.Datasets;
using Microsoft.ML.ActivationAtlas.Persistence;
using Microsoft.ML.ActivationAtlas.Projection;
using Microsoft.ML.Data;

namespace Microsoft.ML.ActivationAtlas.Tests.Projection;

public class ProjectionEstimatorTests
{
    private static IDataView Fashion(MLContext ml, int n, int skip = 0)
    {
        var all = FashionMnist.Load(FashionMnistSplit.Train, maxImages: skip + n);
        var view = all.ToDataView(ml, includeImages: false);
        return skip == 0 ? view : ml.Data.SkipRows(view, skip);
    }

    private static float[][] Column(MLContext ml, IDataView view, string name) =>
        view.GetColumn<float[]>(view.Schema[name]).ToArray();

    [Fact]
    public void ProjectToUmap_FitsTrainingRowsAndPlacesNewRows()
    {
        var ml = new MLContext(seed: 1);
        var train = Fashion(ml, 1200);
        var estimator = ml.Transforms.ProjectToUmap("Layout", "Pixels", numberOfNeighbors: 15);
        var shape = estimator.GetOutputSchema(SchemaShapeOf(ml, train));
        Assert.Contains(shape, c => c.Name == "Layout" && c.ItemType == NumberDataViewType.Single);

        var model = estimator.Fit(train);
        var output = model.Transform(train);
        Assert.Equal(new VectorDataViewType(NumberDataViewType.Single, 2), output.Schema["Layout"].Type);
        var layout = Column(ml, output, "Layout");
        Assert.Equal(1200, layout.Length);
        // The training rows get exactly the fitted layout.
        for (int i = 0; i < 1200; i++)
            Assert.Equal(model.Model.Embedding.AsSpan(2 * i, 2).ToArray(), layout[i]);
        // Other columns pass through.
        Assert.Equal(train.GetColumn<string>("Label").ToArray(), output.GetColumn<string>("Label").ToArray());

        // New rows are placed by UMAP's transform, finite and inside the layout's range (padded).
        var fresh = model.Transform(Fashion(ml, 200, skip: 1200));
        var placed = Column(ml, fresh, "Layout");
        Assert.Equal(200, placed.Length);
        float min = model.Model.Embedding.Min(), max = model.Model.Embedding.Max(), pad = 0.2f * (max - min);
        Assert.All(placed, p => Assert.All(p, v => Assert.InRange(v, min - pad, max + pad)));
        // Each lands among the layout positions of its exact nearest training rows.
        var (near, random) = ProjectionTestData.PlacementSpread(Pixels(ml, train), Pixels(ml, Fashion(ml, 200, skip: 1200)), 784,
            model.Model.Embedding, placed.SelectMany(p => p).ToArray(), 2);
        Assert.True(near < 0.1 * random, $"new rows sit {near:0.000} from their exact neighbours' positions; random positions are {random:0.000} apart");
    }

    [Fact]
    public void ProjectToTsne_OneDimensionalLayoutAndUnseenRowsInterpolated()
    {
        var ml = new MLContext(seed: 1);
        var train = Fashion(ml, 600);
        var model = ml.Transforms.ProjectToTsne(new TsneEstimator.Options
        {
            OutputColumnName = "Axis",
            InputColumnName = "Pixels",
            NumberOfComponents = 1,
            NumberOfIterations = 400,
        }).Fit(train);
        var axis = Column(ml, model.Transform(train), "Axis");
        Assert.Equal(600, axis.Length);
        Assert.All(axis, a => Assert.Single(a));
        Assert.Equal(model.Model.Embedding, axis.Select(a => a[0]).ToArray());

        // Rows it did not see: a copy of a training row gets that row's position; new rows are interpolated.
        var subset = ml.Data.TakeRows(train, 10);
        var again = Column(ml, model.Transform(subset), "Axis");
        Assert.Equal(model.Model.Embedding.AsSpan(0, 10).ToArray(), again.Select(a => a[0]).ToArray());
        var fresh = Column(ml, model.Transform(Fashion(ml, 50, skip: 600)), "Axis");
        Assert.All(fresh, a => Assert.InRange(a[0], model.Model.Embedding.Min(), model.Model.Embedding.Max()));
        var (near, random) = ProjectionTestData.PlacementSpread(Pixels(ml, train), Pixels(ml, Fashion(ml, 50, skip: 600)), 784,
            model.Model.Embedding, fresh.SelectMany(a => a).ToArray(), 1);
        Assert.True(near < 0.1 * random, $"new rows sit {near:0.000} from their exact neighbours' positions; random positions are {random:0.000} apart");
    }

    [Fact]
    public void BadColumns_AreNamedInTheError()
    {
        var ml = new MLContext(seed: 1);
        var train = Fashion(ml, 100);
        var missing = Assert.Throws<ArgumentOutOfRangeException>(() => ml.Transforms.ProjectToUmap("Layout", "Nope").Fit(train));
        Assert.Contains("'Nope'", missing.Message);
        var wrongType = Assert.Throws<ArgumentOutOfRangeException>(() => ml.Transforms.ProjectToUmap("Layout", "LabelIndex").Fit(train));
        Assert.Contains("'LabelIndex'", wrongType.Message);
        var tooFew = Assert.Throws<ArgumentException>(() => ml.Transforms.ProjectToUmap("Layout", "Pixels", numberOfNeighbors: 15).Fit(Fashion(ml, 10)));
        Assert.Contains("'Pixels'", tooFew.Message);

        // Transform-time vector size mismatch.
        var model = ml.Transforms.ProjectToUmap(new UmapEstimator.Options { OutputColumnName = "Layout", InputColumnName = "Pixels", NumberOfEpochs = 20 }).Fit(train);
        var other = ml.Data.LoadFromEnumerable(Enumerable.Range(0, 5).Select(i => new Short { Pixels = new float[10] }));
        var e = Assert.Throws<ArgumentException>(() => model.Transform(other));
        Assert.Contains("784", e.Message);
    }

    [Fact]
    public void SavedPipeline_RoundTripsInAFreshContext()
    {
        var ml = new MLContext(seed: 1);
        var train = Fashion(ml, 800);
        var pipeline = ml.Transforms.ProjectToUmap(new UmapEstimator.Options { OutputColumnName = "Layout", InputColumnName = "Pixels", NumberOfEpochs = 100, Deterministic = true })
            .Append(ml.Transforms.ProjectToTsne(new TsneEstimator.Options { OutputColumnName = "Axis", InputColumnName = "Pixels", NumberOfComponents = 1, NumberOfIterations = 300 }));
        var model = pipeline.Fit(train);
        var fresh = Fashion(ml, 100, skip: 800);
        var expected = model.Transform(fresh);
        string path = Path.Combine(Path.GetTempPath(), $"projection-{Guid.NewGuid():N}.zip");
        try
        {
            ml.Model.SaveAtlas(model, train.Schema, path);
            var ml2 = new MLContext(seed: 5);
            var loaded = ml2.Model.LoadAtlas(path, out var schema);
            Assert.NotNull(schema.GetColumnOrNull("Pixels"));
            var trainOut = loaded.Transform(Fashion(ml2, 800));
            Assert.Equal(Column(ml, model.Transform(train), "Layout"), Column(ml2, trainOut, "Layout"));
            Assert.Equal(Column(ml, model.Transform(train), "Axis"), Column(ml2, trainOut, "Axis"));
            var actual = loaded.Transform(Fashion(ml2, 100, skip: 800));
            Assert.Equal(Column(ml, expected, "Layout"), Column(ml2, actual, "Layout"));
            Assert.Equal(Column(ml, expected, "Axis"), Column(ml2, actual, "Axis"));
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void MlNetSave_PointsToSaveAtlas()
    {
        var ml = new MLContext(seed: 1);
        var train = Fashion(ml, 100);
        var model = ml.Transforms.ProjectToUmap(new UmapEstimator.Options { OutputColumnName = "Layout", InputColumnName = "Pixels", NumberOfEpochs = 10 }).Fit(train);
        var e = Assert.ThrowsAny<Exception>(() => ml.Model.Save(model, train.Schema, new MemoryStream()));
        Assert.Contains("SaveAtlas", e.ToString());
    }

    private static float[] Pixels(MLContext ml, IDataView view) => Column(ml, view, "Pixels").SelectMany(p => p).ToArray();

    private static SchemaShape SchemaShapeOf(MLContext ml, IDataView data) => Common.SchemaShapes.FromSchema(data.Schema);

    private sealed class Short
    {
        [VectorType(10)]
        public float[] Pixels { get; set; } = [];
    }
}
