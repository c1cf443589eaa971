using Microsoft.ML.ActivationAtlas.Common;
using Microsoft.ML.ActivationAtlas.Extraction;
using Microsoft.ML.ActivationAtlas.Inversion.Objectives;
using Microsoft.ML.ActivationAtlas.Inversion.Transforms;
using Microsoft.ML.ActivationAtlas.Inversion.Optimization;
using Microsoft.ML.ActivationAtlas.Inversion.Parameterization;
using Microsoft.ML.ActivationAtlas.Onnx;
using Microsoft.ML.Data;
using Microsoft.ML.Transforms.Image;

namespace Microsoft.ML.ActivationAtlas.Inversion;

/// <summary>
/// Feature inversion as an ML.NET stage: turns a column of direction vectors (e.g. the averaged activations of atlas
/// cells) into icons, images optimised so that the network's activation at the layer points along each direction,
/// plus each icon's fidelity (cosine between the icon's activation and its direction). Fitting computes the
/// optional whitening from an activation column.
/// </summary>
public sealed class FeatureInversionEstimator : IEstimator<FeatureInversionTransformer>
{
    /// <summary>Settings of <see cref="FeatureInversionEstimator"/>. The defaults follow the activation atlas article.</summary>
    public sealed class Options
    {
        /// <summary>The default settings, as constants for other options to refer to.</summary>
        public static class Defaults
        {
            /// <summary>Icon side in pixels: 80 (<see cref="IconRenderOptions.Defaults.Size"/>).</summary>
            public const int Size = IconRenderOptions.Defaults.Size;

            /// <summary>Adam steps per attempt: 128 (<see cref="IconRenderOptions.Defaults.Steps"/>).</summary>
            public const int Steps = IconRenderOptions.Defaults.Steps;
        }

        // The renderer's defaults, the one place they are set.
        private static readonly IconRenderOptions Core = new();

        /// <summary>The network (required), e.g. <see cref="PretrainedModels.ResNet18"/>.</summary>
        public ActivationModel? Model { get; set; }

        /// <summary>The layer: a tensor name or friendly layer name (required), e.g. <c>ReLU393_Output_0</c>.</summary>
        public string Layer { get; set; } = "";

        /// <summary>The icon column written (an <c>MLImage</c>). Default <c>Icon</c>.</summary>
        public string OutputColumnName { get; set; } = AtlasColumnNames.Icon;

        /// <summary>The direction column read (float vector, one value per layer channel). Default <c>Direction</c>.</summary>
        public string InputColumnName { get; set; } = AtlasColumnNames.Direction;

        /// <summary>The fidelity column written (Single), or null for none. Default <c>IconFidelity</c>.</summary>
        public string? FidelityColumnName { get; set; } = AtlasColumnNames.IconFidelity;

        /// <summary>
        /// How a vision transformer's token layer is laid out (the same <see cref="TokenLayout"/> extraction takes);
        /// null for <see cref="TokenLayout.Default"/> ([N, T, C], one class token). Ignored for convolutional layers.
        /// </summary>
        public TokenLayout? Tokens { get; set; }

        /// <summary>
        /// For a token layer: the token whose activation each icon optimises, counted as the layer holds them
        /// (<see cref="IconRenderOptions.ClassToken"/>, 0, for the class token of the default layout). Default null: the
        /// centre patch token, as a convolutional layer's icons optimise the centre position.
        /// </summary>
        public int? Token { get; set; }

        /// <summary>Icon side in pixels. Default <see cref="Defaults.Size"/>.</summary>
        public int Size { get; set; } = Defaults.Size;

        /// <summary>
        /// The square size the network is run at; null runs it at <see cref="Size"/> (lucid's way: a convolutional
        /// layer takes any size), or at the next multiple of 32 where the network's shapes do not fit <see cref="Size"/>
        /// (as ResNet18's last block at 80 px). Default null.
        /// </summary>
        public int? NetworkInputSize { get; set; }

        /// <summary>Adam steps per attempt; 0 keeps the untrained parameterisation (a baseline). Default <see cref="Defaults.Steps"/>.</summary>
        public int Steps { get; set; } = Defaults.Steps;

        /// <summary>Attempts per icon; the best by clean objective is kept. Default 1 (a second one did not raise the median fidelity on atlas cells).</summary>
        public int Attempts { get; set; } = Core.Attempts;

        /// <summary>Icons optimised per network batch. Default 16.</summary>
        public int BatchSize { get; set; } = Core.BatchSize;

        /// <summary>Random seed (icons are reproducible per seed on the CPU). Default 0.</summary>
        public int Seed { get; set; }

        /// <summary>Adam learning rate at the first step. Default 0.2 (lucid: 0.05, constant).</summary>
        public double LearningRate { get; set; } = Core.LearningRate;

        /// <summary>How the learning rate changes over an icon's steps. Default <see cref="LearningRateSchedule.Cosine"/>.</summary>
        public LearningRateSchedule LearningRateSchedule { get; set; } = Core.LearningRateSchedule;

        /// <summary>With the cosine schedule, the last step's learning rate as a fraction of <see cref="LearningRate"/>. Default 0.1.</summary>
        public double FinalLearningRateFraction { get; set; } = Core.FinalLearningRateFraction;

        /// <summary>Steps between clean evaluations, which keep each icon's best parameters. Default 32.</summary>
        public int EvaluationInterval { get; set; } = Core.EvaluationInterval;

        /// <summary>Clean evaluations without progress after which an icon stops early; 0 disables it. Default 0.</summary>
        public int EarlyStoppingPatience { get; set; }

        /// <summary>The relative improvement that counts as progress for early stopping. Default 0.01.</summary>
        public double EarlyStoppingTolerance { get; set; } = Core.EarlyStoppingTolerance;

        /// <summary>Steps of a warm-started icon (see <see cref="FeatureIconRenderer.Render"/>); null for a quarter of <see cref="Steps"/>. Default null.</summary>
        public int? WarmStartSteps { get; set; }

        /// <summary>Image basis. Default <see cref="ImageBasis.Fourier"/>.</summary>
        public ImageBasis Basis { get; set; } = Core.Basis;

        /// <summary>
        /// The fixed amplitude spectrum of <see cref="ImageBasis.Maco"/>; required with MACO, ignored otherwise. Compute
        /// it from natural images (e.g. the atlas's own) with <see cref="IconImages.MeanAmplitudeSpectrum"/>. Default null.
        /// </summary>
        public float[]? MacoMagnitude { get; set; }

        /// <summary>lucid's colour decorrelation. Default true.</summary>
        public bool DecorrelateColors { get; set; } = Core.DecorrelateColors;

        /// <summary>
        /// Transformation robustness. Default <see cref="IconTransforms.Auto"/>: <see cref="IconTransforms.LucidStandard"/>
        /// on a convolutional layer (the article's stronger <see cref="IconTransforms.Atlas"/> list needs about four
        /// times the steps for the same fidelity), <see cref="IconTransforms.PatchAligned"/> on a token layer.
        /// </summary>
        public IconTransforms Transforms { get; set; } = IconTransforms.Auto;

        /// <summary>
        /// Transformation robustness of your own, replacing <see cref="Transforms"/>: built-in steps
        /// (<see cref="PadTransform"/>, <see cref="JitterTransform"/>, ...) and your own <see cref="SamplingTransform"/>s,
        /// in order. Default null.
        /// </summary>
        public IReadOnlyList<ImageTransform>? CustomTransforms { get; set; }

        /// <summary>
        /// An objective of your own (e.g. <c>IconObjective.Atlas() + 0.1 * new MyObjective()</c>), replacing
        /// <see cref="Objective"/>, <see cref="CosinePower"/> and <see cref="CosineFloor"/>. Default null.
        /// </summary>
        public IconObjective? CustomObjective { get; set; }

        /// <summary>The objective. Default the atlas' direction x cosine^n.</summary>
        public ObjectiveKind Objective { get; set; } = Core.Objective;

        /// <summary>n in max(floor, cos)^n. Default 4.</summary>
        public double CosinePower { get; set; } = Core.CosinePower;

        /// <summary>The cosine floor. Default 0.1.</summary>
        public double CosineFloor { get; set; } = Core.CosineFloor;

        /// <summary>Whitening of the directions, fitted from <see cref="WhiteningColumnName"/>. Default none.</summary>
        public WhiteningKind Whitening { get; set; } = WhiteningKind.None;

        /// <summary>The activation column the whitening is fitted from; null uses <see cref="InputColumnName"/>. Default null.</summary>
        public string? WhiteningColumnName { get; set; }

        /// <summary>ONNX Runtime settings; null for CPU defaults.</summary>
        public OnnxSessionOptions? Session { get; set; }

        /// <summary>Progress of the optimisation; null for none.</summary>
        public IProgress<IconRenderProgress>? Progress { get; set; }

        /// <summary>Cancels rendering.</summary>
        public CancellationToken CancellationToken { get; set; }

        internal void Validate()
        {
            if (Model is null)
                throw new ArgumentNullException(nameof(Model), "Options.Model must be set (e.g. PretrainedModels.ResNet18).");
            if (string.IsNullOrWhiteSpace(Layer))
                throw new ArgumentException("Options.Layer must name a layer of the model.", nameof(Layer));
            if (string.IsNullOrWhiteSpace(OutputColumnName))
                throw new ArgumentException("OutputColumnName must be set.", nameof(OutputColumnName));
            if (string.IsNullOrWhiteSpace(InputColumnName))
                throw new ArgumentException("InputColumnName must be set.", nameof(InputColumnName));
            if (FidelityColumnName == OutputColumnName)
                throw new ArgumentException("FidelityColumnName and OutputColumnName must differ.", nameof(FidelityColumnName));
            _ = ToRenderOptions(null);
        }

        internal Options Clone() => (Options)MemberwiseClone();

        // The renderer's settings; `gridWidth` is the layer's width where the network is open (patch-aligned transforms).
        internal IconRenderOptions ToRenderOptions(Whitening? whitening, int? gridWidth = null)
        {
            var o = new IconRenderOptions
            {
                Size = Size,
                Steps = Steps,
                Attempts = Attempts,
                BatchSize = BatchSize,
                Seed = Seed,
                LearningRate = LearningRate,
                LearningRateSchedule = LearningRateSchedule,
                FinalLearningRateFraction = FinalLearningRateFraction,
                EvaluationInterval = EvaluationInterval,
                EarlyStoppingPatience = EarlyStoppingPatience,
                EarlyStoppingTolerance = EarlyStoppingTolerance,
                WarmStartSteps = WarmStartSteps,
                Basis = Basis,
                MacoMagnitude = MacoMagnitude,
                DecorrelateColors = DecorrelateColors,
                Transforms = CustomTransforms?.ToArray() ?? IconTransformLists.For(Transforms, Size, gridWidth),
                Objective = Objective,
                CustomObjective = CustomObjective,
                CosinePower = CosinePower,
                CosineFloor = CosineFloor,
                Whitening = whitening,
                Token = Token,
            };
            o.Validate();
            return o;
        }
    }

    private readonly MLContext _mlContext;
    private readonly Options _options;

    internal FeatureInversionEstimator(MLContext mlContext, Options options)
    {
        ArgumentNullException.ThrowIfNull(mlContext);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        _mlContext = mlContext;
        _options = options.Clone();
    }

    /// <summary>Fits the whitening (when asked for) and returns the transformer.</summary>
    public FeatureInversionTransformer Fit(IDataView input)
    {
        ArgumentNullException.ThrowIfNull(input);
        SchemaShapes.FloatVector(input.Schema, _options.InputColumnName, "directions");
        Whitening? whitening = null;
        if (_options.Whitening != WhiteningKind.None)
        {
            string name = _options.WhiteningColumnName ?? _options.InputColumnName;
            var col = SchemaShapes.FloatVector(input.Schema, name, "activations for whitening");
            var acts = SchemaShapes.ReadFloatMatrix(input, col, out int rows, out int size, _options.CancellationToken);
            if (rows == 0)
                throw new ArgumentException($"Column '{name}' has no rows to fit the whitening from.", nameof(input));
            whitening = Objectives.Whitening.Fit(acts, size, _options.Whitening);
        }
        return new FeatureInversionTransformer(_mlContext, _options, whitening);
    }

    /// <summary>The input shape with the icon and fidelity columns.</summary>
    public SchemaShape GetOutputSchema(SchemaShape inputSchema)
    {
        ArgumentNullException.ThrowIfNull(inputSchema);
        SchemaShapes.RequireFloatVector(inputSchema, _options.InputColumnName, "directions");
        var added = new List<(string, DataViewType)> { (_options.OutputColumnName, new ImageDataViewType(_options.Size, _options.Size)) };
        if (_options.FidelityColumnName is { } f)
            added.Add((f, NumberDataViewType.Single));
        return SchemaShapes.Append(inputSchema, added.ToArray());
    }
}
