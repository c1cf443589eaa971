using Microsoft.ML.ActivationAtlas.Inversion.Network;
using Microsoft.ML.ActivationAtlas.Inversion.Objectives;

namespace Microsoft.ML.ActivationAtlas.Inversion;

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
    private bool _disposed;

    // Either a fitted whitening, or (with options.Whitening set) the row-major activations to fit it from.
    internal FeatureIconRenderer(FeatureInversionEstimator.Options options, Whitening? whitening, ReadOnlyMemory<float> whiteningActivations = default)
    {
        options.Validate();
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
            _renderer = new IconRenderer(_network, options.ToRenderOptions(whitening));
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
