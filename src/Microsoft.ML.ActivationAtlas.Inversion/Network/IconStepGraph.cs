using Microsoft.ML.ActivationAtlas.Gradients;
using Microsoft.ML.ActivationAtlas.Inversion.Objectives;
using Microsoft.ML.ActivationAtlas.Inversion.Parameterization;
using Microsoft.ML.ActivationAtlas.Inversion.Transforms;
using Microsoft.ML.ActivationAtlas.Onnx;
using Microsoft.ML.ActivationAtlas.Onnx.Protobuf;
using static Microsoft.ML.ActivationAtlas.Onnx.OnnxAttributes;

namespace Microsoft.ML.ActivationAtlas.Inversion.Network;

/// <summary>
/// One whole optimisation step of a batch of Fourier-parameterised icons as one ONNX graph: the spectrum to the image
/// (the inverse real DFT as two matrix products with the exact tables of <see cref="RealFourier2D"/>, lucid's colour
/// decorrelation as a 1x1 convolution, sigmoid), the transformation robustness as two GridSample resamplings with
/// per-icon affine maps and zero-border windows (<see cref="StepTransformPlan"/>), the half-pixel resize to the
/// network's input as two matrix products, the input normalisation as a 1x1 convolution, the cut network and the
/// objective's seed (<see cref="ObjectiveSeedGraph"/>); the reverse pass to the spectrum is built by
/// <see cref="GradientGraphBuilder"/>. Inputs: <see cref="SpectrumName"/> <c>[N, parameters]</c>,
/// <see cref="AffineName"/> <c>[N, 2, 2, 3]</c>, <see cref="ClampName"/> <c>[N, 2]</c>, <see cref="WindowName"/>
/// <c>[N, 2, 2]</c> and the prepared targets <c>[N, channels]</c>; outputs: the layer and d(objective)/d(spectrum)
/// (the ascent convention; the caller negates it).
/// </summary>
internal sealed class IconStepGraph
{
    public const string SpectrumName = "icon_spectrum";
    public const string AffineName = "icon_affine";
    public const string ClampName = "icon_clamp";
    public const string WindowName = "icon_window";
    public const string SeedName = "step_seed";
    public const string GradientName = "spectrum_gradient";

    public IconStepGraph(FourierImageParameterization basis, bool decorrelateColors, StepTransformPlan plan, ActivationObjective objective, int y, int x)
    {
        ArgumentNullException.ThrowIfNull(basis);
        ArgumentNullException.ThrowIfNull(plan);
        ArgumentNullException.ThrowIfNull(objective);
        if (!ObjectiveSeedGraph.Supports(objective))
            throw new NotSupportedException("The step graph computes the built-in objectives with no whitening or second-moment whitening.");
        Basis = basis;
        DecorrelateColors = decorrelateColors;
        Plan = plan;
        Objective = objective;
        Y = y;
        X = x;
        Key = $"step|{basis.Height}|{decorrelateColors}|{plan.Describe()}|{y},{x}|{ObjectiveSeedGraph.Key(objective, 0)}";
    }

    public FourierImageParameterization Basis { get; }

    public bool DecorrelateColors { get; }

    public StepTransformPlan Plan { get; }

    public ActivationObjective Objective { get; }

    public int Y { get; }

    public int X { get; }

    /// <summary>Identifies the graph among a model's cached sessions.</summary>
    public string Key { get; }

    /// <summary>Parameters per icon.</summary>
    public int ParameterCount => Basis.ParameterCount;

    /// <summary>Composes the step with a network cut at <paramref name="layer"/> whose image input is <paramref name="input"/>.</summary>
    public ModelProto Build(ModelProto cut, string input, string layer, InputNormalization normalization, bool reluRedirection,
        int inputHeight, int inputWidth, int layerHeight, int layerWidth)
    {
        var m = cut.Clone();
        int opset = Gradients.Internal.OpsetUpgrade.Apply(m);
        var graph = m.Graph;
        var inputInfo = graph.Input.FirstOrDefault(i => i.Name == input)
            ?? throw new ArgumentException($"The network has no input '{input}'.", nameof(input));
        graph.Input.Remove(inputInfo);
        graph.Input.Add(OnnxValueInfo.Float(SpectrumName, "batch", ParameterCount));
        graph.Input.Add(OnnxValueInfo.Float(AffineName, "batch", 2, 2, 3));
        graph.Input.Add(OnnxValueInfo.Float(ClampName, "batch", 2));
        graph.Input.Add(OnnxValueInfo.Float(WindowName, "batch", 2, 2));

        int before = graph.Node.Count;
        var b = new OnnxGraphBuilder(graph, "step__");
        string image = Image(b);
        string transformed = Transform(b, image, opset);
        string resized = Resize(b, transformed, Plan.OutputSize, inputHeight, inputWidth);
        Normalize(b, resized, normalization, inputHeight, inputWidth, input);
        // The image side goes in front of the network's nodes (the graph stays topologically sorted).
        var added = graph.Node.Skip(before).ToList();
        for (int i = graph.Node.Count - 1; i >= before; i--)
            graph.Node.RemoveAt(i);
        for (int i = 0; i < added.Count; i++)
            graph.Node.Insert(i, added[i]);

        var vjp = GradientGraphBuilder.BuildVjp(m, new VjpOptions
        {
            Of = layer,
            WithRespectTo = SpectrumName,
            SeedName = SeedName,
            GradientName = GradientName,
            ReluRedirection = reluRedirection,
        });
        ObjectiveSeedGraph.ReplaceSeed(vjp, layer, SeedName, Objective, Y * layerWidth + X, [layerHeight, layerWidth]);
        return vjp;
    }

    // spectrum [N, 2 * 3 * H * Fw] -> sigmoid(colour(irfft2(scale * spectrum))) [N, 3, H, W].
    private string Image(OnnxGraphBuilder b)
    {
        var fft = Basis.Transform;
        int h = fft.Height, w = fft.Width, fw = fft.SpectrumWidth;
        var (column, row) = fft.DenseMatrices();
        string spectrum = b.Node("Reshape", [SpectrumName, b.Vector("spectrum_shape", -1, 2, 3, h, fw)]);
        string scaled = b.Node("Mul", [spectrum, b.Initializer("spectrum_scale", Basis.SpectrumScale, h, fw)]);
        // [N, 3, (re, im) x H, Fw]: the column pass mixes the stacked real and imaginary rows.
        string stacked = b.Node("Reshape", [b.Node("Transpose", [scaled], Ints("perm", 0, 2, 1, 3, 4)), b.Vector("stacked_shape", -1, 3, 2 * h, fw)]);
        string z = b.Node("MatMul", [b.Initializer("dft_columns", column, 2 * h, 2 * h), stacked]);
        // [N, 3, H, (re, im) x Fw]: the row pass (real output of the half spectrum).
        string side = b.Node("Transpose", [b.Node("Reshape", [z, b.Vector("z_shape", -1, 3, 2, h, fw)])], Ints("perm", 0, 1, 3, 2, 4));
        string raw = b.Node("MatMul", [b.Node("Reshape", [side, b.Vector("side_shape", -1, 3, h, 2 * fw)]), b.Initializer("dft_rows", row, 2 * fw, w)]);
        if (DecorrelateColors)
            raw = b.Node("Conv", [raw, b.Initializer("colour_matrix", ColorDecorrelation.Matrix, 3, 3, 1, 1)]);
        return b.Node("Sigmoid", [raw]);
    }

    // The two resamplings of the plan: [N, 3, S, S] -> [N, 3, OutputSize, OutputSize].
    private string Transform(OnnxGraphBuilder b, string image, int opset)
    {
        var p = Plan;
        long pad = p.Pad;
        string padded = b.Node("Pad", [image, b.Vector("pads", 0, 0, pad, pad, 0, 0, pad, pad), b.Constant("fill", p.Fill)], String("mode", "constant"));
        string mode = opset >= 20 ? "linear" : "bilinear";
        string Sample(string x, string grid) => b.Node("GridSample", [x, grid], String("mode", mode), String("padding_mode", "zeros"), Int("align_corners", 1));
        string canvas = b.Node("Mul", [Sample(padded, Grid(b, 0, p.Canvas, p.Padded, clamp: true)), Mask(b, 0, p.Canvas)]);
        return b.Node("Mul", [Sample(canvas, Grid(b, 1, p.OutputSize, p.Canvas, clamp: false)), Mask(b, 1, p.OutputSize)]);
    }

    // The sampling grid of one stage: input pixel (x, y) = A (X, Y, 1) per output pixel, normalised for align_corners.
    private static string Grid(OnnxGraphBuilder b, int stage, int output, int input, bool clamp)
    {
        var points = new float[output * output * 3];
        for (int y = 0; y < output; y++)
            for (int x = 0; x < output; x++)
            {
                int o = 3 * (y * output + x);
                (points[o], points[o + 1], points[o + 2]) = (x, y, 1f);
            }
        string affine = b.Node("Gather", [AffineName, b.Initializer("stage", new long[] { stage })], Int("axis", 1));
        string transposed = b.Node("Transpose", [affine], Ints("perm", 0, 2, 1));
        string pixels = b.Node("MatMul", [b.Initializer("grid_points", points, output * output, 3), transposed]);
        if (clamp)
            pixels = b.Node("Min", [pixels, b.Node("Unsqueeze", [ClampName, b.Vector("axis1", 1)])]);
        string normalised = b.Node("Sub", [b.Node("Mul", [pixels, b.Constant("to_unit", 2f / (input - 1))]), b.Constant("one", 1f)]);
        return b.Node("Reshape", [normalised, b.Vector("grid_shape", -1, output, output, 2)]);
    }

    // [N, 1, side, side]: 1 where both the row and the column lie in the stage's window [lo, hi).
    private static string Mask(OnnxGraphBuilder b, int stage, int side)
    {
        string window = b.Node("Gather", [WindowName, b.Initializer("stage", new long[] { stage })], Int("axis", 1));
        string lo = b.Node("Slice", [window, b.Vector("lo_start", 0), b.Vector("lo_end", 1), b.Vector("axes", 1)]);
        string hi = b.Node("Slice", [window, b.Vector("hi_start", 1), b.Vector("hi_end", 2), b.Vector("axes", 1)]);
        string index = b.Initializer("index", Enumerable.Range(0, side).Select(i => (float)i).ToArray(), 1, side);
        string inside = b.Node("And", [b.Node("GreaterOrEqual", [index, lo]), b.Node("Less", [index, hi])]);
        string line = b.Node("Cast", [inside], Int("to", (long)TensorProto.Types.DataType.Float));
        return b.Node("Mul", [b.Node("Unsqueeze", [line, b.Vector("rows", 1, 3)]), b.Node("Unsqueeze", [line, b.Vector("columns", 1, 2)])]);
    }

    // The renderer's half-pixel bilinear resize to the network's input, as Ry x Rx^T (the taps of SampledMap itself).
    private static string Resize(OnnxGraphBuilder b, string x, int size, int height, int width)
    {
        if (size == height && size == width)
            return x;
        string rows = b.Initializer("resize_rows", ResizeMatrix(size, height), height, size);
        string columns = b.Initializer("resize_columns", Transpose(ResizeMatrix(size, width), width, size), size, width);
        return b.Node("MatMul", [b.Node("MatMul", [rows, x]), columns]);
    }

    // [output, input]: row o holds the weights of output sample o (a 1-D half-pixel resize, edges clamped).
    private static float[] ResizeMatrix(int input, int output)
    {
        var map = new SampledMap();
        map.SetResize(input, 1, output, 1, halfPixel: true);
        // Channel i of the identity is the unit impulse at input i; its image is column i of the matrix.
        var identity = new float[input * input];
        for (int i = 0; i < input; i++)
            identity[i * input + i] = 1f;
        var columns = new float[input * output];
        map.Forward(identity, columns, input);
        return Transpose(columns, input, output);
    }

    private static float[] Transpose(float[] a, int rows, int cols)
    {
        var t = new float[a.Length];
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < cols; c++)
                t[c * rows + r] = a[r * cols + c];
        return t;
    }

    // x[c] = (scale * image[order[c]] - mean[c]) / std[c] as a 1x1 convolution (and a mean image where there is one).
    private static void Normalize(OnnxGraphBuilder b, string x, InputNormalization n, int height, int width, string output)
    {
        var weights = new float[9];
        var bias = new float[3];
        var order = n.ChannelOrder;
        var std = n.StandardDeviation;
        var mean = n.MeanValues;
        bool perPixel = mean.Length > 3;
        if (perPixel && mean.Length != 3 * height * width)
            throw new InvalidOperationException($"The mean image has {mean.Length / 3} pixels per channel but the network input has {height * width}.");
        for (int c = 0; c < 3; c++)
        {
            weights[3 * c + order[c]] = n.Scale / std[c];
            bias[c] = perPixel ? 0f : -mean[c] / std[c];
        }
        string w = b.Initializer("normalization", weights, 3, 3, 1, 1);
        if (!perPixel)
        {
            b.NodeWithOutputs("Conv", [x, w, b.Initializer("normalization_bias", bias, 3)], [output]);
            return;
        }
        var scaledMean = new float[mean.Length];
        int plane = height * width;
        for (int c = 0; c < 3; c++)
            for (int i = 0; i < plane; i++)
                scaledMean[c * plane + i] = mean[c * plane + i] / std[c];
        b.NodeWithOutputs("Sub", [b.Node("Conv", [x, w]), b.Initializer("mean_image", scaledMean, 1, 3, height, width)], [output]);
    }
}
