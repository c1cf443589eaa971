using Microsoft.ML.ActivationAtlas.Common;
using Microsoft.ML.ActivationAtlas.Extraction;
using Microsoft.ML.ActivationAtlas.Inversion.Network;
using Microsoft.ML.ActivationAtlas.Inversion.Objectives;
using Microsoft.ML.ActivationAtlas.Inversion.Transforms;
using Microsoft.ML.Data;

namespace Microsoft.ML.ActivationAtlas.Inversion;

/// <summary>
/// Feature inversion and feature visualisation in ML.NET: <c>mlContext.Transforms.InvertFeatures(...)</c> turns a
/// column of directions into icons; <c>VisualizeDirection</c>, <c>VisualizeChannel</c> and <c>VisualizeNeuron</c>
/// render one icon in a single call; <c>ActivationGrid</c> and <c>WriteActivationGrid</c> show what the network sees at every position of one image.
/// </summary>
public static class InversionCatalog
{
    /// <summary>Renders an icon and its fidelity for every direction vector of a column.</summary>
    /// <param name="catalog">The transforms catalog.</param>
    /// <param name="model">The network, e.g. <see cref="PretrainedModels.ResNet18"/>.</param>
    /// <param name="layer">The layer (tensor or friendly name), e.g. <c>ReLU393_Output_0</c>.</param>
    /// <param name="outputColumnName">The icon column (MLImage). Default <c>Icon</c>.</param>
    /// <param name="inputColumnName">The direction column (float vector, one value per channel). Default <c>Direction</c>.</param>
    /// <param name="fidelityColumnName">The fidelity column (Single), or null. Default <c>IconFidelity</c>.</param>
    /// <example>A runnable sample: <c>samples/AtlasSamples/IconsSample.cs</c> (<c>dotnet run -c Release --project samples/AtlasSamples -- icons</c>).</example>
    public static FeatureInversionEstimator InvertFeatures(this TransformsCatalog catalog, ActivationModel model, string layer,
        string outputColumnName = ActivationAtlas.AtlasColumnNames.Icon, string inputColumnName = ActivationAtlas.AtlasColumnNames.Direction, string? fidelityColumnName = ActivationAtlas.AtlasColumnNames.IconFidelity)
        => InvertFeatures(catalog, new FeatureInversionEstimator.Options
        {
            Model = model,
            Layer = layer,
            OutputColumnName = outputColumnName,
            InputColumnName = inputColumnName,
            FidelityColumnName = fidelityColumnName,
        });

    /// <summary>Renders an icon and its fidelity for every direction vector of a column, with all settings.</summary>
    /// <param name="catalog">The transforms catalog.</param>
    /// <param name="options">The settings.</param>
    /// <example>A runnable sample: <c>samples/AtlasSamples/IconsSample.cs</c> (<c>dotnet run -c Release --project samples/AtlasSamples -- icons</c>).</example>
    public static FeatureInversionEstimator InvertFeatures(this TransformsCatalog catalog, FeatureInversionEstimator.Options options)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        return new FeatureInversionEstimator(CatalogContext.Of(catalog), options);
    }

    /// <summary>
    /// Creates a feature-inversion renderer to hold for a whole build: its network and ONNX Runtime sessions are built
    /// once and serve every <see cref="FeatureIconRenderer.Render"/> call (every grid, with warm starts from parent cells).
    /// </summary>
    /// <param name="catalog">The transforms catalog.</param>
    /// <param name="options">The settings (<see cref="FeatureInversionEstimator.Options.Model"/> and <see cref="FeatureInversionEstimator.Options.Layer"/> required; the column names are not used).</param>
    /// <param name="whiteningActivations">
    /// Row-major <c>[rows, channels]</c> activations the whitening is fitted from; required when
    /// <see cref="FeatureInversionEstimator.Options.Whitening"/> is not <see cref="WhiteningKind.None"/>, else ignored.
    /// </param>
    /// <example>A runnable sample: <c>samples/AtlasSamples/IconsSample.cs</c> (<c>dotnet run -c Release --project samples/AtlasSamples -- icons</c>).</example>
    public static FeatureIconRenderer CreateIconRenderer(this TransformsCatalog catalog, FeatureInversionEstimator.Options options, ReadOnlyMemory<float> whiteningActivations = default)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        ArgumentNullException.ThrowIfNull(options);
        if (options.Whitening != WhiteningKind.None && whiteningActivations.IsEmpty)
            throw new ArgumentException($"Options.Whitening is {options.Whitening}: give the activations to fit it from.", nameof(whiteningActivations));
        return new FeatureIconRenderer(CatalogContext.Of(catalog), options, null, whiteningActivations);
    }

    /// <summary>Renders one icon for an arbitrary direction at the centre position of the layer.</summary>
    /// <param name="catalog">The transforms catalog.</param>
    /// <param name="options">Settings (<see cref="FeatureInversionEstimator.Options.Model"/> and <see cref="FeatureInversionEstimator.Options.Layer"/> required).</param>
    /// <param name="direction">The direction, one value per channel.</param>
    /// <example>A runnable sample: <c>samples/AtlasSamples/IconsSample.cs</c> (<c>dotnet run -c Release --project samples/AtlasSamples -- icons</c>).</example>
    public static FeatureIcon VisualizeDirection(this TransformsCatalog catalog, FeatureInversionEstimator.Options options, float[] direction)
    {
        ArgumentNullException.ThrowIfNull(direction);
        return RenderOne(catalog, options, direction, position: null, average: false);
    }

    /// <summary>Renders one icon that excites a channel (its mean over all positions), lucid's <c>channel</c> objective.</summary>
    /// <param name="catalog">The transforms catalog.</param>
    /// <param name="options">Settings (Model and Layer required); the objective is the plain direction.</param>
    /// <param name="channel">The channel index.</param>
    /// <example>A runnable sample: <c>samples/AtlasSamples/IconsSample.cs</c> (<c>dotnet run -c Release --project samples/AtlasSamples -- icons</c>).</example>
    public static FeatureIcon VisualizeChannel(this TransformsCatalog catalog, FeatureInversionEstimator.Options options, int channel)
    {
        ArgumentNullException.ThrowIfNull(options);
        return RenderOne(catalog, options, OneHot(catalog, options, channel), position: null, average: true);
    }

    /// <summary>Renders one icon that excites one neuron: a channel at one layer position (in the layer's grid at the network input size).</summary>
    /// <param name="catalog">The transforms catalog.</param>
    /// <param name="options">Settings (Model and Layer required); the objective is the plain direction.</param>
    /// <param name="channel">The channel index.</param>
    /// <param name="y">The layer row.</param>
    /// <param name="x">The layer column.</param>
    /// <example>A runnable sample: <c>samples/AtlasSamples/IconsSample.cs</c> (<c>dotnet run -c Release --project samples/AtlasSamples -- icons</c>).</example>
    public static FeatureIcon VisualizeNeuron(this TransformsCatalog catalog, FeatureInversionEstimator.Options options, int channel, int y, int x)
    {
        ArgumentNullException.ThrowIfNull(options);
        return RenderOne(catalog, options, OneHot(catalog, options, channel), position: (y, x), average: false);
    }

    /// <summary>
    /// The article's "looking at a single image": runs the image through the network at its declared input size (or
    /// <see cref="FeatureInversionEstimator.Options.NetworkInputSize"/>), takes the activation vector at every layer
    /// position and renders an icon for each, laid out in the layer's grid.
    /// </summary>
    /// <param name="catalog">The transforms catalog.</param>
    /// <param name="options">Settings (Model and Layer required).</param>
    /// <param name="image">The image.</param>
    /// <example>A runnable sample: <c>samples/AtlasSamples/IconsSample.cs</c> (<c>dotnet run -c Release --project samples/AtlasSamples -- icons</c>).</example>
    public static ActivationGrid ActivationGrid(this TransformsCatalog catalog, FeatureInversionEstimator.Options options, MLImage image)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(image);
        options.Validate();
        var model = options.Model!;
        // The image's activations, at the size the network was made for.
        int inputSize = options.NetworkInputSize ?? DeclaredSize(model);
        float[] vectors;
        int rows, cols, channels;
        using (var network = InversionNetwork.Open(model, options.Layer, inputSize, options.Session, 1, tokens: options.Tokens))
        {
            var planar = IconImages.ToPlanar(image);
            var input = new float[3 * inputSize * inputSize];
            ImageResize.Bilinear(planar, 3, image.Height, image.Width, input, inputSize, inputSize);
            rows = network.LayerHeight;
            cols = network.LayerWidth;
            channels = network.LayerChannels;
            // A token layer is [C, T]: its class and register tokens, then the patch grid.
            int first = network.Tokens?.PrefixTokens ?? 0, plane = first + rows * cols;
            var layer = new float[channels * plane];
            network.Forward(input, 1, layer);
            vectors = new float[rows * cols * channels];
            for (int p = 0; p < rows * cols; p++)
                for (int c = 0; c < channels; c++)
                    vectors[p * channels + c] = layer[c * plane + first + p];
        }
        var directions = new List<float[]>();
        var cells = new List<int>();
        for (int p = 0; p < rows * cols; p++)
        {
            var v = vectors.AsSpan(p * channels, channels).ToArray();
            if (System.Numerics.Tensors.TensorPrimitives.Norm(v) > 0)
            {
                directions.Add(v);
                cells.Add(p);
            }
        }
        var icons = new RenderedIcon?[rows * cols];
        if (directions.Count > 0)
        {
            using var iconNetwork = InversionNetwork.ForIcons(options);
            var rendered = new IconRenderer(iconNetwork, options.ToRenderOptions(null, iconNetwork.LayerWidth)).Render(directions, options.Progress, options.CancellationToken);
            for (int i = 0; i < cells.Count; i++)
                icons[cells[i]] = rendered[i];
        }
        return new ActivationGrid(IconImages.Grid(icons, cols, gap: 0), rows, cols, icons, vectors);
    }

    /// <summary>
    /// The article's "looking at a single image" for an image file: the image through the network (as atlas
    /// extraction decodes it: center crop, then scaling to the input size) at every position of the layer, an
    /// inverted icon per position (one renderer for all), each position's attribution to the classes of
    /// <see cref="ActivationGridOptions.HeadModel"/> (or of the atlas's trained head) and, with
    /// <see cref="ActivationGridOptions.Atlas"/>, every position placed on the atlas by its fitted layout and grid.
    /// </summary>
    /// <param name="catalog">The transforms catalog.</param>
    /// <param name="imagePath">The image file.</param>
    /// <param name="options">Settings (the network and layer, or an atlas).</param>
    /// <param name="progress">Receives each stage's progress (optional).</param>
    /// <param name="cancellationToken">Cancels the work.</param>
    /// <example>A runnable sample: <c>samples/AtlasSamples/IconsSample.cs</c> (<c>dotnet run -c Release --project samples/AtlasSamples -- icons</c>).</example>
    public static ActivationGrid ActivationGrid(this TransformsCatalog catalog, string imagePath, ActivationGridOptions options,
        IProgress<Building.AtlasBuildProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        return ActivationGridBuilder.Build(CatalogContext.Of(catalog), imagePath, options, progress, cancellationToken);
    }

    /// <summary>
    /// <see cref="ActivationGrid(TransformsCatalog, string, ActivationGridOptions, IProgress{Building.AtlasBuildProgress}?, CancellationToken)"/>
    /// written into a new folder (see <see cref="Inversion.ActivationGrid.Write"/>); the folder is checked first and
    /// filled under a temporary name, renamed when complete.
    /// </summary>
    /// <param name="catalog">The transforms catalog.</param>
    /// <param name="imagePath">The image file.</param>
    /// <param name="outputFolder">The folder to create; it must not exist.</param>
    /// <param name="options">Settings (the network and layer, or an atlas).</param>
    /// <param name="progress">Receives each stage's progress (optional).</param>
    /// <param name="cancellationToken">Cancels the work; nothing is written then.</param>
    /// <example>A runnable sample: <c>samples/AtlasSamples/IconsSample.cs</c> (<c>dotnet run -c Release --project samples/AtlasSamples -- icons</c>).</example>
    public static ActivationGrid WriteActivationGrid(this TransformsCatalog catalog, string imagePath, string outputFolder, ActivationGridOptions options,
        IProgress<Building.AtlasBuildProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        return Rendering.ActivationGridWriter.Build(CatalogContext.Of(catalog), imagePath, outputFolder, options, progress, cancellationToken);
    }

    internal static int DeclaredSize(ActivationModel model) => TryDeclaredSize(model)
        ?? throw new ArgumentException($"{model.Description} has no fixed input size; set Options.NetworkInputSize.");

    internal static int? TryDeclaredSize(ActivationModel model)
    {
        var input = Onnx.OnnxGraphSurgery.RealInputs(model.Network.Graph).First();
        var dims = Onnx.OnnxValueInfo.Dims(model.Network.Graph.Input.First(i => i.Name == input));
        return dims is { Length: 4 } && dims[2] > 0 ? (int)dims[2] : null;
    }

    private static float[] OneHot(TransformsCatalog catalog, FeatureInversionEstimator.Options options, int channel)
    {
        options.Validate();
        using var network = InversionNetwork.ForIcons(options);
        if (channel < 0 || channel >= network.LayerChannels)
            throw new ArgumentOutOfRangeException(nameof(channel), $"Channel {channel} is outside layer '{options.Layer}', which has {network.LayerChannels} channels.");
        var d = new float[network.LayerChannels];
        d[channel] = 1f;
        return d;
    }

    private static FeatureIcon RenderOne(TransformsCatalog catalog, FeatureInversionEstimator.Options options, float[] direction, (int, int)? position, bool average)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        // Single channels and neurons start switched off for a grey image: redirect blocked ReLU gradients (lucid).
        using var network = InversionNetwork.ForIcons(options, reluRedirection: average || position is not null);
        ActivationObjective.Validate(direction, network.LayerChannels, $"direction for layer '{options.Layer}'");
        var render = options.ToRenderOptions(null, network.LayerWidth);
        render.Position = position;
        if (position is not null)
            render.Token = null;
        render.AveragePositions = average;
        if (average || position is not null)
            render.Objective = ObjectiveKind.Direction;
        var icon = new IconRenderer(network, render).Render([direction], options.Progress, options.CancellationToken)[0];
        return new FeatureIcon(icon);
    }
}
