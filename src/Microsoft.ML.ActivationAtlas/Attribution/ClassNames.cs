using Microsoft.ML.ActivationAtlas.Onnx.Protobuf;

namespace Microsoft.ML.ActivationAtlas.Attribution;

/// <summary>Class names of a classifier network: given, from a labels file, or from the model's metadata.</summary>
public static class ClassNames
{
    /// <summary>The model metadata key holding the class names, one per line.</summary>
    public const string MetadataKey = "class_names";

    /// <summary>
    /// Resolves the names of <paramref name="count"/> classes: <paramref name="names"/> if given, else the lines of
    /// <paramref name="labelsPath"/>, else the model's <see cref="MetadataKey"/> metadata, else <c>class_0</c>, <c>class_1</c>, ...
    /// </summary>
    /// <param name="model">The network.</param>
    /// <param name="count">The number of logits.</param>
    /// <param name="names">Explicit names, or null.</param>
    /// <param name="labelsPath">A text file with one name per line, or null.</param>
    public static string[] Resolve(ModelProto model, int count, string[]? names, string? labelsPath)
    {
        string[]? found = names;
        string source = "the ClassNames option";
        if (found is null && labelsPath is not null)
        {
            if (!File.Exists(labelsPath))
                throw new FileNotFoundException($"The labels file '{labelsPath}' does not exist.", labelsPath);
            found = File.ReadAllLines(labelsPath).Where(l => l.Trim().Length > 0).Select(l => l.Trim()).ToArray();
            source = $"the labels file '{labelsPath}'";
        }
        if (found is null && model.MetadataProps.FirstOrDefault(p => p.Key == MetadataKey) is { } entry)
        {
            found = entry.Value.Split('\n', StringSplitOptions.RemoveEmptyEntries);
            source = $"the model's '{MetadataKey}' metadata";
        }
        if (found is null)
            return Enumerable.Range(0, count).Select(i => $"class_{i}").ToArray();
        if (found.Length != count)
            throw new ArgumentException($"{source} lists {found.Length} class names but the network has {count} logits.");
        return found;
    }

    /// <summary>Stores class names in a model's metadata (replacing earlier ones).</summary>
    /// <param name="model">The model to edit.</param>
    /// <param name="names">The names.</param>
    public static void Write(ModelProto model, IReadOnlyList<string> names)
    {
        foreach (var old in model.MetadataProps.Where(p => p.Key == MetadataKey).ToList())
            model.MetadataProps.Remove(old);
        if (names.Any(n => n.Contains('\n')))
            throw new ArgumentException("Class names cannot contain line breaks.");
        model.MetadataProps.Add(new StringStringEntryProto { Key = MetadataKey, Value = string.Join("\n", names) });
    }
}
