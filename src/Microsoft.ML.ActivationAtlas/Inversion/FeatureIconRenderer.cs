using Microsoft.ML.ActivationAtlas.Common;
using Microsoft.ML.ActivationAtlas.Extraction;
using Microsoft.ML.ActivationAtlas.Inversion.Network;
using Microsoft.ML.Data;
using Microsoft.ML.ActivationAtlas.Inversion.Objectives;

namespace Microsoft.ML.ActivationAtlas.Inversion;

/// <summary>How a later layer of the network sees an icon compared with its cell's member images.</summary>
/// <param name="Cosine">The cosine between the icon's downstream features and the members' mean features.</param>
/// <param name="IconTopClass">The icon's top class under the given head, or null without a head.</param>
/// <param name="TopClassMatches">Whether that is the members' top class, or null without a head.</param>
public readonly record struct IconAgreement(double Cosine, int? IconTopClass, bool? TopClassMatches);

/// <summary>
/// Feature inversion held for a whole atlas build: the network cut at the layer, its gradient graphs and ONNX Runtime
/// sessions are built once, and every <see cref="Render"/> call (a grid, a batch of cells) reuses them. Icons flow
/// through the optimisation batch, so calls of any size keep it full. Create it with
/// <c>mlContext.Transforms.CreateIconRenderer(options)</c>; dispose it when the build is done.
/// </summary>
public sealed class FeatureIconRenderer : IDisposable
{
    private readonly object _gate = new();
    private readonly OnnxLayerGradientModel _network;
    private readonly IconRenderer _renderer;
    private readonly MLContext _mlContext;
    private readonly ActivationModel _model;
    private bool _disposed;

    // Either a fitted whitening, or (with options.Whitening set) the row-major activations to fit it from.
    internal FeatureIconRenderer(MLContext mlContext, FeatureInversionEstimator.Options options, Whitening? whitening, ReadOnlyMemory<float> whiteningActivations = default)
    {
        options.Validate();
        _mlContext = mlContext;
        _model = options.Model!;
        _network = InversionNetwork.ForIcons(options);
        try
        {
            int channels = _network.LayerChannels;
            if (whitening is null && options.Whitening != WhiteningKind.None && !whiteningActivations.IsEmpty)
            {
                if (whiteningActivations.Length % channels != 0)
                    throw new ArgumentException($"The whitening activations hold {whiteningActivations.Length} values, not a whole number of rows of {channels} channels (layer '{options.Layer}').", nameof(whiteningActivations));
                whitening = Whitening.Fit(whiteningActivations.Span, channels, options.Whitening);
            }
            _renderer = new IconRenderer(_network, options.ToRenderOptions(whitening, _network.LayerWidth));
        }
        catch
        {
            _network.Dispose();
            throw;
        }
        Whitening = whitening;
        Layer = options.Layer;
    }

    /// <summary>The layer the icons are optimised at.</summary>
    public string Layer { get; }

    /// <summary>Channels of the layer (the length of a direction).</summary>
    public int LayerChannels => _network.LayerChannels;

    /// <summary>The square size the network is run at (icons are resized to it).</summary>
    public int NetworkInputSize => _network.InputHeight;

    /// <summary>Parameters per icon: the length of <see cref="RenderedIcon.Parameters"/> and of a warm start.</summary>
    public int ParameterCount => _renderer.ParameterCount;

    /// <summary>The whitening the objective uses, or null.</summary>
    public Whitening? Whitening { get; }

    /// <summary>
    /// Renders one icon per direction. An icon with a warm start begins from the given parameters, normally the
    /// <see cref="RenderedIcon.Parameters"/> of the cell's parent in the next coarser grid, and runs
    /// <see cref="FeatureInversionEstimator.Options.WarmStartSteps"/> steps.
    /// </summary>
    /// <param name="directions">Target directions (e.g. cells' mean activations), one value per layer channel.</param>
    /// <param name="warmStarts">Null, or one entry per direction: null for a cold start, else <see cref="ParameterCount"/> values.</param>
    /// <param name="progress">Optional progress.</param>
    /// <param name="cancellationToken">Cancels between optimisation steps.</param>
    public IReadOnlyList<RenderedIcon> Render(IReadOnlyList<float[]> directions, IReadOnlyList<float[]?>? warmStarts = null,
        IProgress<IconRenderProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            return _renderer.Render(directions, warmStarts, progress, cancellationToken);
        }
    }

    /// <summary>
    /// Renders icons in order until <paramref name="budget"/> is spent (the first batch always starts; icons under way
    /// finish); icons not started are null, so a build can show example images for those cells instead.
    /// </summary>
    /// <param name="directions">Target directions, one value per layer channel.</param>
    /// <param name="warmStarts">Null, or one entry per direction: null for a cold start, else <see cref="ParameterCount"/> values.</param>
    /// <param name="budget">Wall-clock time after which no further icon starts; must be positive.</param>
    /// <param name="progress">Optional progress.</param>
    /// <param name="cancellationToken">Cancels between optimisation steps.</param>
    public IReadOnlyList<RenderedIcon?> RenderWithin(IReadOnlyList<float[]> directions, IReadOnlyList<float[]?>? warmStarts, TimeSpan budget,
        IProgress<IconRenderProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            return _renderer.RenderWithin(directions, warmStarts, budget, progress, cancellationToken);
        }
    }

    /// <summary>
    /// The spatial mean of the icons' layer (<see cref="Layer"/>; of a token layer's patch tokens), as a global pooling and a linear head after it see the
    /// icons: each icon resized to <see cref="NetworkInputSize"/> and run through the renderer's own network and
    /// sessions, one forward run per <see cref="FeatureInversionEstimator.Options.BatchSize"/> icons (no gradient).
    /// </summary>
    /// <param name="icons">The icons (of this renderer, or any planar RGB icons).</param>
    /// <returns>One vector of <see cref="LayerChannels"/> values per icon.</returns>
    public float[][] LayerMeans(IReadOnlyList<RenderedIcon> icons)
    {
        ArgumentNullException.ThrowIfNull(icons);
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            int nh = _network.InputHeight, nw = _network.InputWidth, inputSize = 3 * nh * nw;
            // A token layer's class and register tokens come first; the mean is over the patch tokens (as its trained head reads it).
            int c = _network.LayerChannels, plane = _network.LayerHeight * _network.LayerWidth, prefix = _network.Tokens?.PrefixTokens ?? 0;
            int positions = prefix + plane, layerSize = c * positions;
            int batch = Math.Max(1, _network.MaxBatchSize);
            var input = new float[Math.Min(batch, icons.Count) * inputSize];
            var layer = new float[Math.Min(batch, icons.Count) * layerSize];
            var result = new float[icons.Count][];
            for (int start = 0; start < icons.Count; start += batch)
            {
                int n = Math.Min(batch, icons.Count - start);
                for (int i = 0; i < n; i++)
                {
                    var icon = icons[start + i] ?? throw new ArgumentException($"Icon {start + i} is null.", nameof(icons));
                    var target = input.AsSpan(i * inputSize, inputSize);
                    if (icon.Size == nh && icon.Size == nw)
                        icon.Pixels.AsSpan(0, inputSize).CopyTo(target);
                    else
                        Transforms.ImageResize.Bilinear(icon.Pixels, 3, icon.Size, icon.Size, target, nh, nw);
                }
                _network.Forward(input.AsSpan(0, n * inputSize), n, layer.AsSpan(0, n * layerSize));
                for (int i = 0; i < n; i++)
                {
                    var mean = new float[c];
                    for (int ch = 0; ch < c; ch++)
                        mean[ch] = System.Numerics.Tensors.TensorPrimitives.Sum(layer.AsSpan(i * layerSize + ch * positions + prefix, plane)) / plane;
                    result[start + i] = mean;
                }
            }
            return result;
        }
    }

    /// <summary>
    /// What a later layer sees in each icon: the spatial mean of <paramref name="layer"/> (e.g. ResNet18's pooled output
    /// <c>Pooling395_Output_0</c>) with every icon resized to the network's declared input size, as real images are
    /// seen. Compare with the same features of a cell's member images (<see cref="DownstreamFeatures(IReadOnlyList{string}, string)"/>).
    /// </summary>
    /// <param name="icons">The icons.</param>
    /// <param name="layer">A 4-D layer after the icons' layer (tensor or friendly name).</param>
    public float[][] DownstreamFeatures(IReadOnlyList<RenderedIcon> icons, string layer)
    {
        ArgumentNullException.ThrowIfNull(icons);
        int size = InversionCatalog.DeclaredSize(_model), n = 3 * size * size;
        var rows = icons.Select(icon =>
        {
            var pixels = new float[n];
            Transforms.ImageResize.Bilinear(icon.Pixels, 3, icon.Size, icon.Size, pixels, size, size);
            System.Numerics.Tensors.TensorPrimitives.Multiply(pixels, 255f, pixels);
            return new PixelRow { Pixels = pixels };
        }).ToList();
        var schema = SchemaDefinition.Create(typeof(PixelRow));
        schema[nameof(PixelRow.Pixels)].ColumnType = new VectorDataViewType(NumberDataViewType.Single, n);
        return Extract(_mlContext.Data.LoadFromEnumerable(rows, schema), nameof(PixelRow.Pixels), layer);
    }

    /// <summary>The spatial mean of <paramref name="layer"/> for image files (e.g. a cell's member images), as the atlas extracts them.</summary>
    /// <param name="imagePaths">Image files.</param>
    /// <param name="layer">A 4-D layer (tensor or friendly name).</param>
    public float[][] DownstreamFeatures(IReadOnlyList<string> imagePaths, string layer)
    {
        ArgumentNullException.ThrowIfNull(imagePaths);
        var data = _mlContext.Data.LoadFromEnumerable(imagePaths.Select(p => new PathRow { Path = p }));
        return Extract(data, nameof(PathRow.Path), layer);
    }

    /// <summary>
    /// Downstream agreement of each icon with its cell's member images: the cosine between the icon's
    /// <see cref="DownstreamFeatures(IReadOnlyList{RenderedIcon}, string)"/> and the members' mean features, and, with a
    /// linear class head on those features (scores = W f + b), whether the icon's top class is the members' top class.
    /// </summary>
    /// <param name="icons">The icons.</param>
    /// <param name="layer">The downstream 4-D layer.</param>
    /// <param name="membersMeanFeatures">Per icon, the mean downstream features of its cell's member images.</param>
    /// <param name="classWeights">Optional head weights, row-major <c>[classes, features]</c>; empty for none.</param>
    /// <param name="classBiases">Optional head biases <c>[classes]</c>; empty for zeros.</param>
    public IReadOnlyList<IconAgreement> Agreement(IReadOnlyList<RenderedIcon> icons, string layer, IReadOnlyList<float[]> membersMeanFeatures,
        ReadOnlyMemory<float> classWeights = default, ReadOnlyMemory<float> classBiases = default)
    {
        ArgumentNullException.ThrowIfNull(icons);
        ArgumentNullException.ThrowIfNull(membersMeanFeatures);
        if (membersMeanFeatures.Count != icons.Count)
            throw new ArgumentException($"There are {membersMeanFeatures.Count} member means for {icons.Count} icons.", nameof(membersMeanFeatures));
        var features = DownstreamFeatures(icons, layer);
        int d = features.Length > 0 ? features[0].Length : 0;
        int classes = classWeights.IsEmpty ? 0 : classWeights.Length / Math.Max(1, d);
        if (!classWeights.IsEmpty && classWeights.Length != classes * d)
            throw new ArgumentException($"The class weights hold {classWeights.Length} values, not a whole number of rows of the {d} features of '{layer}'.", nameof(classWeights));
        if (!classBiases.IsEmpty && classBiases.Length != classes)
            throw new ArgumentException($"There are {classBiases.Length} class biases for {classes} classes.", nameof(classBiases));
        var result = new IconAgreement[icons.Count];
        for (int i = 0; i < icons.Count; i++)
        {
            if (membersMeanFeatures[i]?.Length != d)
                throw new ArgumentException($"The member mean of icon {i} has {membersMeanFeatures[i]?.Length ?? 0} values; '{layer}' has {d} features.", nameof(membersMeanFeatures));
            double cosine = ActivationObjective.Cosine(features[i], membersMeanFeatures[i]);
            if (classes == 0)
            {
                result[i] = new IconAgreement(cosine, null, null);
                continue;
            }
            int iconClass = TopClass(features[i], classWeights.Span, classBiases.Span, classes);
            int memberClass = TopClass(membersMeanFeatures[i], classWeights.Span, classBiases.Span, classes);
            result[i] = new IconAgreement(cosine, iconClass, iconClass == memberClass);
        }
        return result;
    }

    private static int TopClass(ReadOnlySpan<float> features, ReadOnlySpan<float> weights, ReadOnlySpan<float> biases, int classes)
    {
        int d = features.Length, best = 0;
        double bestScore = double.NegativeInfinity;
        for (int k = 0; k < classes; k++)
        {
            double score = System.Numerics.Tensors.TensorPrimitives.Dot(weights.Slice(k * d, d), features) + (biases.IsEmpty ? 0 : biases[k]);
            if (score > bestScore)
                (best, bestScore) = (k, score);
        }
        return best;
    }

    private float[][] Extract(IDataView data, string column, string layer)
    {
        ArgumentException.ThrowIfNullOrEmpty(layer);
        var extraction = _mlContext.Transforms.ExtractActivations(new ActivationExtractingEstimator.Options
        {
            Model = _model,
            Layers = [layer],
            OutputColumnNames = ["Features"],
            InputColumnName = column,
            Sampling = ActivationSampling.SpatialMean,
        });
        var output = extraction.Fit(data).Transform(data);
        var matrix = SchemaShapes.ReadFloatMatrix(output, output.Schema["Features"], out int rows, out int size);
        return Enumerable.Range(0, rows).Select(r => matrix.AsSpan(r * size, size).ToArray()).ToArray();
    }

    private sealed class PixelRow
    {
        public float[] Pixels { get; set; } = [];
    }

    private sealed class PathRow
    {
        public string Path { get; set; } = "";
    }

    /// <summary>Releases the ONNX Runtime sessions.</summary>
    public void Dispose()
    {
        lock (_gate)
        {
            if (_disposed)
                return;
            _disposed = true;
            _network.Dispose();
        }
    }
}
