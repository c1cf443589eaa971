using System.Reflection;

namespace Microsoft.ML.ActivationAtlas.Persistence;

/// <summary>
/// Finds, by reflection over this assembly and the loaded assemblies that reference it, the transformer types
/// marked with <see cref="AtlasPersistenceAttribute"/> and their <c>LoadState(MLContext, AtlasStateReader)</c> methods.
/// </summary>
internal static class AtlasStateLoaders
{
    private static readonly object s_gate = new();
    private static Dictionary<string, (AtlasPersistenceAttribute Info, MethodInfo Load)>? s_byKind;

    /// <summary>The persistence attribute of a transformer, or an error naming its type.</summary>
    public static AtlasPersistenceAttribute InfoOf(IAtlasPersistable transformer) =>
        transformer.GetType().GetCustomAttribute<AtlasPersistenceAttribute>()
        ?? throw new InvalidOperationException($"{transformer.GetType().Name} implements IAtlasPersistable but has no [AtlasPersistence] attribute.");

    /// <summary>Rebuilds a transformer of the given kind from its state.</summary>
    public static ITransformer Load(string kind, int version, MLContext mlContext, AtlasStateReader reader)
    {
        if (!TryFind(kind, out var entry))
            throw new InvalidDataException($"{reader.ModelPath}: unknown activation-atlas stage '{kind}'; the file was written by a newer version of Microsoft.ML.ActivationAtlas.");
        if (version > entry.Info.Version)
            throw new InvalidDataException($"{reader.ModelPath}: stage '{kind}' is stored in format version {version}, newer than this library reads ({entry.Info.Version}).");
        try
        {
            return (ITransformer)entry.Load.Invoke(null, [mlContext, reader])!;
        }
        catch (TargetInvocationException e) when (e.InnerException is not null)
        {
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(e.InnerException);
            throw;
        }
    }

    private static bool TryFind(string kind, out (AtlasPersistenceAttribute Info, MethodInfo Load) entry)
    {
        lock (s_gate)
        {
            s_byKind ??= Discover();
            if (s_byKind.TryGetValue(kind, out entry))
                return true;
            // An assembly loaded since the last scan may hold the kind.
            s_byKind = Discover();
            return s_byKind.TryGetValue(kind, out entry);
        }
    }

    private static Dictionary<string, (AtlasPersistenceAttribute, MethodInfo)> Discover()
    {
        var self = typeof(AtlasStateLoaders).Assembly;
        string selfName = self.GetName().Name!;
        var assemblies = AppDomain.CurrentDomain.GetAssemblies()
            .Where(a => a == self || (!a.IsDynamic && a.GetReferencedAssemblies().Any(r => r.Name == selfName)));

        var map = new Dictionary<string, (AtlasPersistenceAttribute, MethodInfo)>(StringComparer.Ordinal);
        foreach (var type in assemblies.SelectMany(a => a.GetTypes()))
        {
            var info = type.GetCustomAttribute<AtlasPersistenceAttribute>();
            if (info is null)
                continue;
            var load = type.GetMethod("LoadState", BindingFlags.Static | BindingFlags.Public | BindingFlags.NonPublic, [typeof(MLContext), typeof(AtlasStateReader)])
                ?? throw new InvalidOperationException($"{type.Name} has [AtlasPersistence(\"{info.Kind}\")] but no static LoadState(MLContext, AtlasStateReader) method.");
            if (!map.TryAdd(info.Kind, (info, load)))
                throw new InvalidOperationException($"Two transformer types claim the persistence kind '{info.Kind}'.");
        }
        return map;
    }
}
