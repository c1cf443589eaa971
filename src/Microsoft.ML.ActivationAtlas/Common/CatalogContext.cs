using System.Reflection;
using Microsoft.ML.Runtime;

namespace Microsoft.ML.ActivationAtlas.Common;

/// <summary>Recovers the <see cref="MLContext"/> behind a catalog (ML.NET keeps it internal).</summary>
internal static class CatalogContext
{
    public static MLContext Of(TransformsCatalog catalog)
    {
        // The catalog's environment is internal; MLContext is the only public host, and a fresh one with the same
        // seed is what transformers need for their own settings. Reflection keeps the original when possible.
        var env = typeof(TransformsCatalog).GetProperty("Environment", BindingFlags.Instance | BindingFlags.NonPublic)?.GetValue(catalog);
        return env as MLContext ?? new MLContext();
    }

    /// <summary>
    /// A seed drawn from the catalog's <see cref="MLContext"/> random stream, as ML.NET's own trainers draw theirs:
    /// reproducible for <c>new MLContext(seed: s)</c> (each stage created from it gets the next seed of the stream),
    /// random without a seed.
    /// </summary>
    public static int DrawSeed(TransformsCatalog catalog, string stage)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        // ML.NET keeps the context's environment in a private field of the catalog (an internal property before 1.0).
        const BindingFlags hidden = BindingFlags.Instance | BindingFlags.NonPublic;
        var env = (typeof(TransformsCatalog).GetField("_env", hidden)?.GetValue(catalog)
            ?? typeof(TransformsCatalog).GetProperty("Environment", hidden)?.GetValue(catalog)) as IHostEnvironment
            ?? throw new InvalidOperationException($"{stage}: this ML.NET version hides the MLContext's random stream; set the stage's Seed.");
        return env.Register(stage).Rand.Next();
    }
}
