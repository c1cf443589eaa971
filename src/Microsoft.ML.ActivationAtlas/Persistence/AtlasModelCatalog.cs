namespace Microsoft.ML.ActivationAtlas.Persistence;

/// <summary>
/// Saving and loading pipelines that contain activation-atlas transformers
/// (<c>mlContext.Model.SaveAtlas(...)</c> / <c>mlContext.Model.LoadAtlas(...)</c>).
/// </summary>
public static class AtlasModelCatalog
{
}
