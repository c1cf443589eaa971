namespace Microsoft.ML.ActivationAtlas.Building;

/// <summary>
/// Where <see cref="AtlasBuilder"/> keeps finished stages (and pages of a stage in progress), so that the same build
/// run again after an interruption reuses them. Each entry carries a key describing the settings it was computed with;
/// an entry whose key differs is treated as missing. <see cref="FileStageStore"/> (files in a folder) is the default.
/// </summary>
public interface IAtlasStageStore
{
    /// <summary>Loads the row-major float matrix stored under <paramref name="name"/> when it was saved with <paramref name="key"/>.</summary>
    /// <param name="name">The entry, e.g. <c>activations</c>.</param>
    /// <param name="key">The settings it must have been computed with.</param>
    /// <param name="values">The values, rows x columns.</param>
    /// <param name="rows">The number of rows.</param>
    /// <param name="columns">The number of columns.</param>
    bool TryLoad(string name, string key, out float[] values, out int rows, out int columns);

    /// <summary>Stores a row-major float matrix; the entry must appear complete or not at all.</summary>
    /// <param name="name">The entry.</param>
    /// <param name="key">The settings it was computed with.</param>
    /// <param name="values">The values, rows x columns.</param>
    /// <param name="rows">The number of rows.</param>
    /// <param name="columns">The number of columns.</param>
    void Save(string name, string key, float[] values, int rows, int columns);

    /// <summary>Loads the bytes stored under <paramref name="name"/> when they were saved with <paramref name="key"/>.</summary>
    /// <param name="name">The entry, e.g. <c>layout.zip</c>.</param>
    /// <param name="key">The settings it must have been computed with.</param>
    /// <param name="bytes">The bytes.</param>
    bool TryLoadBytes(string name, string key, out byte[] bytes);

    /// <summary>Stores bytes; the entry must appear complete or not at all.</summary>
    /// <param name="name">The entry.</param>
    /// <param name="key">The settings they were computed with.</param>
    /// <param name="bytes">The bytes.</param>
    void SaveBytes(string name, string key, byte[] bytes);

    /// <summary>Removes an entry (matrix or bytes) if present.</summary>
    /// <param name="name">The entry.</param>
    void Delete(string name);
}
