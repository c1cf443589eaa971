using System.IO.Compression;
using System.Reflection;
using System.Text.Json;
using Microsoft.ML.Data;
using Microsoft.ML.Transforms;

namespace Microsoft.ML.ActivationAtlas.Persistence;

/// <summary>
/// Saves and loads fitted pipelines that contain activation-atlas stages, as one model file:
/// <c>mlContext.Model.SaveAtlas(model, data.Schema, "atlas.zip")</c> and
/// <c>mlContext.Model.LoadAtlas("atlas.zip", out var schema)</c>.
/// </summary>
/// <remarks>
/// <para>
/// ML.NET keeps the API a transformer needs to save itself (<c>ModelSaveContext</c>) internal, so the
/// stages of this library cannot be written by <c>mlContext.Model.Save</c>. <c>SaveAtlas</c> writes an ordinary
/// ML.NET model zip in which every atlas stage is replaced by a small placeholder
/// (a <c>CustomMapping</c> with contract name <c>Microsoft.ML.ActivationAtlas.StagePlaceholder</c>), then adds
/// each stage's own state to the same zip under <c>ActivationAtlas/</c>, with a manifest saying where each
/// stage sits in the pipeline. <c>LoadAtlas</c> loads ML.NET's part with <c>mlContext.Model.Load</c> and
/// swaps every placeholder for its stage. ML.NET transformers of any kind can sit before, between and after
/// the atlas stages.
/// </para>
/// <para>The file is written to a temporary name and renamed when complete.</para>
/// </remarks>
public static class AtlasModelCatalog
{
    private const string ManifestEntry = "ActivationAtlas/manifest.json";
    private const string StateFolder = "ActivationAtlas/stages/";
    private const int FormatVersion = 1;

    /// <summary>
    /// Saves <paramref name="model"/> (a fitted pipeline that may contain activation-atlas stages) and the
    /// schema of its input to <paramref name="filePath"/>.
    /// </summary>
    /// <param name="catalog">The model operations catalog (<c>mlContext.Model</c>).</param>
    /// <param name="model">The fitted pipeline: a single transformer or a <see cref="TransformerChain{TLastTransformer}"/>.</param>
    /// <param name="inputSchema">The schema of the data the pipeline reads (<c>data.Schema</c>); may be null.</param>
    /// <param name="filePath">The model file to write; an existing file is replaced only once the new one is complete.</param>
    /// <example>A runnable sample: <c>samples/AtlasSamples/SaveLoadSample.cs</c> (<c>dotnet run -c Release --project samples/AtlasSamples -- saveload</c>).</example>
    public static void SaveAtlas(this ModelOperationsCatalog catalog, ITransformer model, DataViewSchema? inputSchema, string filePath)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        ArgumentNullException.ThrowIfNull(model);
        ArgumentException.ThrowIfNullOrEmpty(filePath);

        string full = Path.GetFullPath(filePath);
        string? dir = Path.GetDirectoryName(full);
        if (!string.IsNullOrEmpty(dir) && !Directory.Exists(dir))
            throw new DirectoryNotFoundException($"Cannot save the model to '{filePath}': folder '{dir}' does not exist.");

        Rendering.AtomicOutput.WriteFile(full, stream => catalog.SaveAtlas(model, inputSchema, stream));
    }

    /// <summary>Saves <paramref name="model"/> and its input schema to a writable, seekable stream.</summary>
    /// <param name="catalog">The model operations catalog (<c>mlContext.Model</c>).</param>
    /// <param name="model">The fitted pipeline.</param>
    /// <param name="inputSchema">The schema of the data the pipeline reads; may be null.</param>
    /// <param name="stream">The destination; it must be readable, writable and seekable (a file or memory stream).</param>
    /// <example>A runnable sample: <c>samples/AtlasSamples/SaveLoadSample.cs</c> (<c>dotnet run -c Release --project samples/AtlasSamples -- saveload</c>).</example>
    public static void SaveAtlas(this ModelOperationsCatalog catalog, ITransformer model, DataViewSchema? inputSchema, Stream stream)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(stream);
        if (!stream.CanSeek || !stream.CanRead || !stream.CanWrite)
            throw new ArgumentException("SaveAtlas needs a readable, writable and seekable stream (a FileStream or MemoryStream).", nameof(stream));

        var placeholderContext = new MLContext();
        var stages = new List<(int[] Path, IAtlasPersistable Stage)>();
        ITransformer mlnetPart = ReplaceStages(model, [], stages, placeholderContext);

        long start = stream.Position;
        catalog.Save(mlnetPart, inputSchema, stream);
        stream.Position = start;

        using var zip = new ZipArchive(stream, ZipArchiveMode.Update, leaveOpen: true);
        var manifest = new Manifest { FormatVersion = FormatVersion };
        for (int i = 0; i < stages.Count; i++)
        {
            var info = AtlasStateLoaders.InfoOf(stages[i].Stage);
            string folder = $"{StateFolder}{i}-{info.Kind}/";
            stages[i].Stage.SaveState(new AtlasStateWriter(zip, folder));
            manifest.Stages.Add(new ManifestStage { Path = stages[i].Path, Kind = info.Kind, Version = info.Version, Folder = folder });
        }
        using (var m = zip.CreateEntry(ManifestEntry, CompressionLevel.Fastest).Open())
            JsonSerializer.Serialize(m, manifest, PersistenceJson.Options);
        // A fixed time on every entry: the same pipeline saves to the same bytes (reproducible builds).
        foreach (var entry in zip.Entries)
            entry.LastWriteTime = FixedEntryTime;
    }

    private static readonly DateTimeOffset FixedEntryTime = new(2000, 1, 1, 0, 0, 0, TimeSpan.Zero);

    /// <summary>
    /// Loads a pipeline saved by <see cref="SaveAtlas(ModelOperationsCatalog, ITransformer, DataViewSchema?, string)"/>
    /// (or any ordinary ML.NET model file).
    /// </summary>
    /// <param name="catalog">The model operations catalog (<c>mlContext.Model</c>).</param>
    /// <param name="filePath">The model file.</param>
    /// <param name="inputSchema">The schema of the data the pipeline was fitted on, as saved.</param>
    /// <returns>The pipeline, with every atlas stage restored.</returns>
    /// <example>A runnable sample: <c>samples/AtlasSamples/SaveLoadSample.cs</c> (<c>dotnet run -c Release --project samples/AtlasSamples -- saveload</c>).</example>
    public static ITransformer LoadAtlas(this ModelOperationsCatalog catalog, string filePath, out DataViewSchema inputSchema)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        ArgumentException.ThrowIfNullOrEmpty(filePath);
        if (!File.Exists(filePath))
            throw new FileNotFoundException($"Model file '{filePath}' does not exist.", filePath);
        using var stream = File.OpenRead(filePath);
        return Load(stream, filePath, out inputSchema);
    }

    /// <summary>Loads a pipeline saved by <c>SaveAtlas</c> from a readable, seekable stream.</summary>
    /// <param name="catalog">The model operations catalog (<c>mlContext.Model</c>).</param>
    /// <param name="stream">The model file's content.</param>
    /// <param name="inputSchema">The schema of the data the pipeline was fitted on, as saved.</param>
    /// <returns>The pipeline, with every atlas stage restored.</returns>
    /// <example>A runnable sample: <c>samples/AtlasSamples/SaveLoadSample.cs</c> (<c>dotnet run -c Release --project samples/AtlasSamples -- saveload</c>).</example>
    public static ITransformer LoadAtlas(this ModelOperationsCatalog catalog, Stream stream, out DataViewSchema inputSchema)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        ArgumentNullException.ThrowIfNull(stream);
        if (!stream.CanSeek)
            throw new ArgumentException("LoadAtlas needs a seekable stream.", nameof(stream));
        return Load(stream, "(stream)", out inputSchema);
    }

    private static ITransformer Load(Stream stream, string name, out DataViewSchema inputSchema)
    {
        try
        {
            return LoadUnchecked(stream, name, out inputSchema);
        }
        catch (Exception e) when (e is InvalidDataException or IOException or FormatException or JsonException && !e.Message.StartsWith(name, StringComparison.Ordinal))
        {
            // Damage deep inside the archive (a corrupt entry, a truncated file) surfaces as bare zip or JSON errors.
            throw new InvalidDataException($"{name}: the model file is damaged ({e.Message})", e);
        }
    }

    private static ITransformer LoadUnchecked(Stream stream, string name, out DataViewSchema inputSchema)
    {
        // ML.NET's catalog does not expose its environment, and the placeholder's factory must be registered
        // with the environment that loads the file: load with a context that knows this assembly and every
        // loaded assembly that declares custom-mapping factories of its own.
        var context = new MLContext();
        foreach (var assembly in AssembliesWithCustomMappings())
            context.ComponentCatalog.RegisterAssembly(assembly);

        long start = stream.Position;
        ITransformer mlnetPart;
        try
        {
            mlnetPart = context.Model.Load(stream, out inputSchema);
        }
        catch (Exception e) when (e is InvalidOperationException or FormatException or InvalidDataException)
        {
            throw new InvalidDataException($"{name}: not a readable ML.NET model file ({e.Message})", e);
        }

        stream.Position = start;
        using var zip = new ZipArchive(stream, ZipArchiveMode.Read, leaveOpen: true);
        var entry = zip.GetEntry(ManifestEntry);
        if (entry is null)
            return mlnetPart; // a plain ML.NET model

        Manifest manifest;
        using (var m = entry.Open())
            manifest = JsonSerializer.Deserialize<Manifest>(m, PersistenceJson.Options)
                ?? throw new InvalidDataException($"{name}: the activation-atlas manifest is empty.");
        if (manifest.FormatVersion > FormatVersion)
            throw new InvalidDataException($"{name}: written in atlas model format {manifest.FormatVersion}, newer than this library reads ({FormatVersion}).");

        var restored = new Dictionary<string, ITransformer>(StringComparer.Ordinal);
        foreach (var stage in manifest.Stages)
        {
            var reader = new AtlasStateReader(zip, stage.Folder, name);
            restored[PathKey(stage.Path)] = AtlasStateLoaders.Load(stage.Kind, stage.Version, context, reader);
        }
        var result = RestoreStages(mlnetPart, [], restored, name);
        if (restored.Count > 0)
            throw new InvalidDataException($"{name}: the manifest names stages at {string.Join(", ", restored.Keys)} that have no placeholder in the pipeline; the file is damaged.");
        return result;
    }

    private static ITransformer ReplaceStages(ITransformer t, int[] path, List<(int[] Path, IAtlasPersistable Stage)> stages, MLContext context)
    {
        if (t is IAtlasPersistable stage)
        {
            stages.Add((path, stage));
            return AtlasPlaceholderFactory.Create(context);
        }
        if (IsChain(t, out var items))
        {
            var replaced = items.Select((item, i) => ReplaceStages(item, [.. path, i], stages, context)).ToArray();
            return new TransformerChain<ITransformer>(replaced);
        }
        return t;
    }

    private static ITransformer RestoreStages(ITransformer t, int[] path, Dictionary<string, ITransformer> restored, string name)
    {
        string key = PathKey(path);
        if (restored.Remove(key, out var stage))
            return stage;
        if (t is CustomMappingTransformer<AtlasPlaceholderFactory.Input, AtlasPlaceholderFactory.Output>)
            throw new InvalidDataException($"{name}: an activation-atlas stage placeholder at position {key} has no stored state; the file is damaged.");
        if (IsChain(t, out var items))
            return new TransformerChain<ITransformer>(items.Select((item, i) => RestoreStages(item, [.. path, i], restored, name)).ToArray());
        return t;
    }

    private static bool IsChain(ITransformer t, out IReadOnlyList<ITransformer> items)
    {
        var type = t.GetType();
        if (type.IsGenericType && type.GetGenericTypeDefinition() == typeof(TransformerChain<>))
        {
            items = ((IEnumerable<ITransformer>)t).ToList();
            return true;
        }
        items = [];
        return false;
    }

    private static string PathKey(int[] path) => path.Length == 0 ? "root" : string.Join('/', path);

    private static IEnumerable<Assembly> AssembliesWithCustomMappings()
    {
        yield return typeof(AtlasModelCatalog).Assembly;
        string mlTransforms = typeof(CustomMappingFactoryAttributeAttribute).Assembly.GetName().Name!;
        foreach (var a in AppDomain.CurrentDomain.GetAssemblies())
        {
            if (a == typeof(AtlasModelCatalog).Assembly || a.IsDynamic || !a.GetReferencedAssemblies().Any(r => r.Name == mlTransforms))
                continue;
            Type[] types;
            try
            {
                types = a.GetTypes();
            }
            catch (ReflectionTypeLoadException e)
            {
                types = e.Types.Where(x => x is not null).ToArray()!;
            }
            if (types.Any(x => x.GetCustomAttribute<CustomMappingFactoryAttributeAttribute>() is not null))
                yield return a;
        }
    }

    private sealed class Manifest
    {
        public int FormatVersion { get; set; }

        public List<ManifestStage> Stages { get; set; } = [];
    }

    private sealed class ManifestStage
    {
        public int[] Path { get; set; } = [];

        public string Kind { get; set; } = "";

        public int Version { get; set; }

        public string Folder { get; set; } = "";
    }
}
