using System.Reflection;
using Microsoft.ML.Runtime;

namespace Microsoft.ML.ActivationAtlas.Common;

/// <summary>What the stages need from the <see cref="MLContext"/> behind a catalog (ML.NET keeps it internal).</summary>
internal static class CatalogContext
{
    /// <summary>
    /// A context for a stage's own ML.NET work. ML.NET's catalogs hold the context's environment, never the
    /// <see cref="MLContext"/> itself, so this is a fresh context: stages take their seeds from their options or from
    /// <see cref="DrawSeed"/>, not from it.
    /// </summary>
    public static MLContext Of(TransformsCatalog catalog) => Environment(catalog) as MLContext ?? new MLContext();

    /// <summary>
    /// A seed drawn from the catalog's <see cref="MLContext"/> random stream, as ML.NET's own trainers draw theirs:
    /// reproducible for <c>new MLContext(seed: s)</c> (each stage created from it gets the next seed of the stream),
    /// random without a seed.
    /// </summary>
    public static int DrawSeed(TransformsCatalog catalog, string stage)
    {
        var env = Environment(catalog)
            ?? throw new InvalidOperationException($"{stage}: this ML.NET version hides the MLContext's random stream; set the stage's Seed.");
        return env.Register(stage).Rand.Next();
    }

    // ML.NET keeps the context's environment in a private field of the catalog (an internal property before 1.0).
    private static IHostEnvironment? Environment(TransformsCatalog catalog)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        const BindingFlags hidden = BindingFlags.Instance | BindingFlags.NonPublic;
        return (typeof(TransformsCatalog).GetField("_env", hidden)?.GetValue(catalog)
            ?? typeof(TransformsCatalog).GetProperty("Environment", hidden)?.GetValue(catalog)) as IHostEnvironment;
    }
}
