using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace Microsoft.ML.ActivationAtlas.Onnx;

/// <summary>Convenience runs of a session on float tensors (for tools and tests; hot loops use <see cref="OrtValue"/> directly).</summary>
public static class OnnxSessionExtensions
{
    /// <summary>Runs the session on float inputs and returns the requested float outputs (copied).</summary>
    /// <param name="session">The session.</param>
    /// <param name="inputs">Input name to tensor.</param>
    /// <param name="outputNames">Outputs to fetch; null for all of the session's outputs.</param>
    public static IReadOnlyDictionary<string, OnnxFloatTensor> RunFloat(this InferenceSession session,
        IReadOnlyDictionary<string, OnnxFloatTensor> inputs, IReadOnlyList<string>? outputNames = null)
    {
        ArgumentNullException.ThrowIfNull(session);
        ArgumentNullException.ThrowIfNull(inputs);
        outputNames ??= session.OutputMetadata.Keys.ToList();
        var values = inputs.Select(kv => OrtValue.CreateTensorValueFromMemory(kv.Value.Data, kv.Value.Shape)).ToList();
        try
        {
            using var runOptions = new RunOptions();
            using var results = session.Run(runOptions, inputs.Keys.ToList(), values, outputNames);
            var dict = new Dictionary<string, OnnxFloatTensor>(StringComparer.Ordinal);
            int i = 0;
            foreach (var r in results)
            {
                var info = r.GetTensorTypeAndShape();
                if (info.ElementDataType != TensorElementType.Float)
                    throw new InvalidOperationException($"Output '{outputNames[i]}' is {info.ElementDataType}, not float.");
                dict[outputNames[i++]] = new OnnxFloatTensor(r.GetTensorDataAsSpan<float>().ToArray(), info.Shape);
            }
            return dict;
        }
        finally
        {
            foreach (var v in values)
                v.Dispose();
        }
    }
}
