using System.Reflection;

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
}
