using Microsoft.ML.ActivationAtlas.Attribution;
using Microsoft.ML.ActivationAtlas.Building;
using Microsoft.ML.ActivationAtlas.Extraction;
using Microsoft.ML.ActivationAtlas.Onnx;
using Microsoft.ML.Data;
using SkiaSharp;

namespace Microsoft.ML.ActivationAtlas.Inversion;

/// <summary>
/// The activation grid of one image file: the image through the network (the atlas's own extraction when there is an
/// atlas) at every position of the layer, each position's attribution to the classes of a head, its place on the
/// atlas through the fitted layout and grid, and an inverted icon per position from one renderer.
/// </summary>
internal static class ActivationGridBuilder
{
    private const string PathColumn = "ImagePath";
    private const string ActivationColumn = AtlasStages.Activation;
    private const string PositionColumn = "Position";
    private const string ClassColumn = "ClassValues";

    public static ActivationGrid Build(MLContext ml, string imagePath, ActivationGridOptions options, IProgress<AtlasBuildProgress>? progress, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentException.ThrowIfNullOrEmpty(imagePath);
        options.Validate();
        var imageSize = CheckImage(imagePath);
        var atlas = options.Atlas;
        var report = new StageReporter(progress);
        var stage = report.Start("activations");

        // The atlas's own extraction (network, layer, preprocessing), or one of the network given; every position.
        var atlasExtraction = atlas?.Extraction;
        var model = options.Model ?? atlas!.Model;
        string layerName = string.IsNullOrEmpty(options.Layer) ? atlas!.LayerName : options.Layer;
        var settings = (atlasExtraction?.Settings ?? new ActivationExtractingEstimator.Options { Model = model, Layers = [layerName], Tokens = options.Tokens })
            .AtEveryPosition(PathColumn, ActivationColumn, PositionColumn, BadRowHandling.Fail);
        if (options.Session is not null)
            settings.Session = options.Session.Clone();
        if (atlas is not null)
            CheckAtlas(atlas, atlasExtraction!, options.Model, layerName);
        var data = ml.Data.LoadFromEnumerable(new[] { new ImagePathRow { ImagePath = imagePath } });
        using var extraction = ml.Transforms.ExtractActivations(settings).Fit(data);
        var layer = extraction.Layers[0];
        if (layer.Tokens is null && layer.Height * layer.Width < 2)
            throw new ArgumentException($"Layer '{layer.Name}' of {model.Description} has shape [{string.Join(", ", layer.Shape)}]: it has no spatial " +
                "positions to lay out as a grid; choose a convolutional layer with a height and width (see 'atlas layers').", nameof(options.Layer));
        int rows = layer.Height, cols = layer.Width, channels = layer.Channels, positions = rows * cols;

        // Class values: the classifier given, else the atlas's trained head (closed form for a linear head on the mean).
        ActivationModel? head = options.HeadModel;
        string? classSource = head is null ? null : $"classifier {head.Description}";
        if (head is null && atlas?.TrainedHeadModel(model, layer) is { } trained)
            (head, classSource) = (trained, "the atlas's trained head");
        IDataView view = extraction.Transform(data);
        AttributionTransformer? attribution = null;
        try
        {
            if (head is not null)
            {
                attribution = ml.Transforms.ComputeAttribution(new AttributionEstimator.Options
                {
                    Model = head,
                    Layer = layer.Name,
                    Tokens = settings.Tokens,
                    InputColumnName = PathColumn,
                    ActivationColumnName = ActivationColumn,
                    PositionColumnName = PositionColumn,
                    OutputColumnName = ClassColumn,
                    ClassNames = options.ClassNames ?? (options.HeadModel is null ? atlas!.ClassNames.ToArray() : null),
                    Session = settings.Session.Clone(),
                }).Fit(view);
                view = attribution.Transform(view);
            }
            // The positions on the atlas: its fitted layout (UMAP's transform) and grid, as its pipeline places new rows.
            if (atlas is not null)
                view = atlas.Grid.Transform(atlas.Layout.Transform(view));
            view = ml.Data.Cache(view);
            var activations = Matrices.Read(view, ActivationColumn, out int n, out _, ct);
            if (n != positions)
                throw new InvalidDataException($"Image '{imagePath}' gave {n} rows at layer '{layer.Name}', not its {rows}x{cols} positions.");
            var classValues = head is null ? [] : Matrices.Read(view, ClassColumn, out _, out _, ct);
            var layout = atlas is null ? [] : Matrices.Read(view, atlas.Layout.OutputColumnName, out _, out _, ct);
            var cells = atlas is null ? [] : ReadInts(view, atlas.Grid.OutputColumnName, ct);
            var order = ReadInts(view, PositionColumn, ct);
            for (int p = 0; p < positions; p++)
                if (order[2 * p] != p / cols || order[2 * p + 1] != p % cols)
                    throw new InvalidDataException($"Layer '{layer.Name}': the positions of '{imagePath}' are not in row-major order.");
            var classNames = attribution?.ClassNames.ToArray() ?? [];
            stage.Done($"{rows}x{cols} positions x {channels}");

            var icons = RenderIcons(ml, model, layer.Name, layer.Tokens, activations, positions, channels, options, settings.Session, report, ct);
            var crop = ImageFileDecoder.CenterCrop(imageSize.Width, imageSize.Height, extraction.Engine.Converter.Width, extraction.Engine.Converter.Height);
            return new ActivationGrid(IconImages.Grid(icons, cols, gap: 0), rows, cols, icons, activations)
            {
                ImagePath = Path.GetFullPath(imagePath),
                ModelName = atlas?.ModelName ?? model.BuiltInName ?? model.Description,
                LayerName = layer.Name,
                InputRegion = crop,
                ImageSize = imageSize,
                ClassNames = classNames,
                ClassValues = classValues,
                ClassSource = classSource,
                TopClasses = TopClasses(classValues, classNames.Length, options.TopClasses),
                Atlas = atlas,
                Layout = layout,
                Cells = cells,
            };
        }
        finally
        {
            attribution?.Dispose();
        }
    }

    /// <summary>The image file's size, with an error naming the file when it cannot be read as an image.</summary>
    private static (int Width, int Height) CheckImage(string path)
    {
        if (!File.Exists(path))
            throw new FileNotFoundException($"The image file '{path}' does not exist.", path);
        using var bitmap = SKBitmap.Decode(path);
        if (bitmap is null || bitmap.Width == 0 || bitmap.Height == 0)
            throw new InvalidDataException($"The image file '{path}' is not a readable image (corrupt or an unsupported format).");
        return (bitmap.Width, bitmap.Height);
    }

    /// <summary>Fails, naming both, when the grid asks for another network or layer than the atlas was built on.</summary>
    private static void CheckAtlas(BuiltAtlas atlas, ActivationExtractingTransformer atlasExtraction, ActivationModel? model, string layer)
    {
        var atlasModel = atlasExtraction.Settings.Model!;
        var atlasLayer = atlasExtraction.Layers[0];
        // The same file, the same built-in name, or (a model file given again by another path, the atlas holding its
        // copy) the same network and preprocessing graphs.
        bool sameModel = model is null || model.Description == atlasModel.Description
            || (model.BuiltInName ?? model.Description) == atlas.ModelName
            || (model.BuiltInName is null && atlasModel.BuiltInName is null && model.Network.Equals(atlasModel.Network)
                && Equals(model.PreprocessingModel, atlasModel.PreprocessingModel));
        bool sameLayer = layer == atlas.LayerName || layer == atlasLayer.Name || layer == atlasLayer.FriendlyName;
        if (!sameModel || !sameLayer)
            throw new ArgumentException($"The atlas '{atlas.Folder}' was built on model {atlas.ModelName}, layer {atlas.LayerName}; " +
                $"the grid asks for model {(model is null ? atlas.ModelName : model.BuiltInName ?? model.Description)}, layer {layer}. " +
                "Leave the model and layer out to use the atlas's, or choose an atlas of that model and layer.", nameof(ActivationGridOptions.Atlas));
    }

    private static RenderedIcon?[] RenderIcons(MLContext ml, ActivationModel model, string layer, TokenLayout? tokens, float[] activations, int positions, int channels,
        ActivationGridOptions options, OnnxSessionOptions session, StageReporter report, CancellationToken ct)
    {
        var icons = new RenderedIcon?[positions];
        var directions = new List<float[]>();
        var cells = new List<int>();
        for (int p = 0; p < positions; p++)
        {
            var v = activations.AsSpan(p * channels, channels);
            if (System.Numerics.Tensors.TensorPrimitives.Norm(v) > 0)
            {
                directions.Add(v.ToArray());
                cells.Add(p);
            }
        }
        var stage = report.Start("icons");
        if (directions.Count > 0)
        {
            // One renderer (network, gradient graphs, sessions) for every position.
            using var renderer = ml.Transforms.CreateIconRenderer(new FeatureInversionEstimator.Options
            {
                Model = model,
                Layer = layer,
                Tokens = tokens,
                Size = options.IconSize,
                Steps = options.IconSteps,
                Seed = options.Seed,
                Session = session.Clone(),
            });
            double total = (double)directions.Count * options.IconSteps;
            var rendered = renderer.Render(directions, progress: new SyncProgress<IconRenderProgress>(p => stage.Report(p.IconSteps / total)), cancellationToken: ct);
            for (int i = 0; i < cells.Count; i++)
                icons[cells[i]] = rendered[i];
        }
        stage.Done($"{directions.Count} icons, {options.IconSteps} steps");
        return icons;
    }

    /// <summary>The classes with the largest attribution summed over the positions, largest first.</summary>
    private static int[] TopClasses(float[] values, int classes, int top)
    {
        if (classes == 0)
            return [];
        var sums = new double[classes];
        for (int i = 0; i < values.Length; i++)
            sums[i % classes] += values[i];
        return Enumerable.Range(0, classes).OrderByDescending(k => sums[k]).ThenBy(k => k).Take(top).ToArray();
    }

    private static int[] ReadInts(IDataView view, string column, CancellationToken ct)
    {
        var col = view.Schema[column];
        var result = new List<int>();
        using var cursor = view.GetRowCursor([col]);
        var get = cursor.GetGetter<VBuffer<int>>(col);
        VBuffer<int> buffer = default;
        while (cursor.MoveNext())
        {
            ct.ThrowIfCancellationRequested();
            get(ref buffer);
            foreach (var v in buffer.DenseValues())
                result.Add(v);
        }
        return result.ToArray();
    }
}
