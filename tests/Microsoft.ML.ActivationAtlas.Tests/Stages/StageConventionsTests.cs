using Microsoft.ML.ActivationAtlas.Binning;
using Microsoft.ML.ActivationAtlas.Datasets;
using Microsoft.ML.ActivationAtlas.Extraction;
using Microsoft.ML.ActivationAtlas.Projection;
using Microsoft.ML.ActivationAtlas.Projection.Tsne;
using Microsoft.ML.ActivationAtlas.Tests.Extraction;
using Microsoft.ML.ActivationAtlas.Tests.Infrastructure;
using Microsoft.ML.Data;

namespace Microsoft.ML.ActivationAtlas.Tests.Stages;

/// <summary>What every stage shares: default column names that chain, seeds from the MLContext, cancellation.</summary>
public class StageConventionsTests
{
    private const string Relu = "ReLU393_Output_0";

    [Fact]
    public void DefaultColumnNames_ChainFromExtractionToTheAggregatedAtlas()
    {
        // Every stage with its Options left at their defaults: each one's output is the next one's input.
        var ml = new MLContext(seed: 1);
        var images = ExtractionData.Cifar(ml, 3);
        var pipeline = ml.Transforms.ExtractActivations(new ActivationExtractingEstimator.Options { Model = PretrainedModels.ResNet18, Layers = [Relu] })
            .Append(ml.Transforms.ProjectToUmap(new UmapEstimator.Options { NumberOfNeighbors = 5 }))
            .Append(ml.Transforms.BinToGrid(new BinToGridEstimator.Options { GridSizes = [3] }));
        var view = pipeline.Fit(images).Transform(images);
        Assert.Equal(512, ((VectorDataViewType)view.Schema[AtlasColumnNames.Activation].Type).Size);
        var atlas = ml.Data.AggregateAtlas(view, new AtlasAggregationOptions());
        Assert.Equal(30, atlas.Levels.Single().Cells.Sum(c => c.Count));
        Assert.Equal(512, atlas.Levels.Single().Cells[0].MeanActivation.Length);
    }

    [Fact]
    public void LayoutSeeds_ComeFromTheMlContextUnlessGiven()
    {
        float[] Fit(MLContext ml, Func<MLContext, IEstimator<ITransformer>> estimator)
        {
            var data = FashionMnist.Load(FashionMnistSplit.Train, maxImages: 300).ToDataView(ml, includeImages: false);
            var view = estimator(ml).Fit(data).Transform(data);
            return view.GetColumn<float[]>("Layout").SelectMany(v => v).ToArray();
        }

        IEstimator<ITransformer> Umap(MLContext ml) => ml.Transforms.ProjectToUmap(new UmapEstimator.Options { InputColumnName = "Pixels", NumberOfNeighbors = 10, NumberOfEpochs = 30, Deterministic = true });
        IEstimator<ITransformer> Tsne(MLContext ml) => ml.Transforms.ProjectToTsne(new TsneEstimator.Options { InputColumnName = "Pixels", NumberOfIterations = 260, Initialization = TsneInitialization.Random });

        foreach (var estimator in new[] { Umap, (Func<MLContext, IEstimator<ITransformer>>)Tsne })
        {
            // The same context seed gives the same layout; another context seed another one (ML.NET's convention).
            Assert.Equal(Fit(new MLContext(seed: 3), estimator), Fit(new MLContext(seed: 3), estimator));
            Assert.NotEqual(Fit(new MLContext(seed: 3), estimator), Fit(new MLContext(seed: 4), estimator));
        }
        // An explicit seed wins over the context's.
        IEstimator<ITransformer> Seeded(MLContext ml) => ml.Transforms.ProjectToUmap("Layout", "Pixels", numberOfNeighbors: 10, seed: 7);
        Assert.Equal(Fit(new MLContext(seed: 3), Seeded), Fit(new MLContext(seed: 4), Seeded));
        // The caller's options are not written to.
        var options = new UmapEstimator.Options();
        _ = new MLContext(seed: 1).Transforms.ProjectToUmap(options);
        Assert.Null(options.Seed);
    }

    [Fact]
    public void CancelledToken_StopsExtractionCursors()
    {
        var ml = new MLContext(seed: 1);
        var images = ExtractionData.Cifar(ml, 1);
        using var cts = new CancellationTokenSource();
        cts.Cancel();
        var extraction = ml.Transforms.ExtractActivations(new ActivationExtractingEstimator.Options
        {
            Model = PretrainedModels.ResNet18,
            Layers = [Relu],
            CancellationToken = cts.Token,
        }).Fit(images);
        Assert.ThrowsAny<OperationCanceledException>(() => ExtractionData.Column(extraction.Transform(images), AtlasColumnNames.Activation));
    }
}
