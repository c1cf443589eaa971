using Microsoft.ML.Data;

namespace Microsoft.ML.ActivationAtlas.Extraction;

/// <summary>Builds the output schema: input columns, then one activation vector per layer, the spatial mean (when asked for), then the position.</summary>
internal static class ActivationSchema
{
    public static DataViewSchema Build(DataViewSchema input, ActivationExtractingTransformer t)
    {
        var builder = new DataViewSchema.Builder();
        builder.AddColumns(input);
        for (int l = 0; l < t.Layers.Count; l++)
        {
            var layer = t.Layers[l];
            string label = layer.FriendlyName ?? layer.Name;
            var slotNames = Enumerable.Range(0, layer.Channels).Select(c => $"{label}/{c}").ToArray();
            var annotations = new DataViewSchema.Annotations.Builder();
            AddSlotNames(annotations, slotNames);
            string layerName = layer.Name;
            annotations.Add(ActivationExtractingTransformer.LayerAnnotationKind, TextDataViewType.Instance,
                (ref ReadOnlyMemory<char> v) => v = layerName.AsMemory());
            builder.AddColumn(t.OutputColumnNames[l], new VectorDataViewType(NumberDataViewType.Single, layer.Channels), annotations.ToAnnotations());
        }
        if (t.SpatialMeanColumnName is { } mean)
        {
            var layer = t.Layers[0];
            var annotations = new DataViewSchema.Annotations.Builder();
            string label = layer.FriendlyName ?? layer.Name;
            AddSlotNames(annotations, Enumerable.Range(0, layer.Channels).Select(c => $"{label}/{c}").ToArray());
            string layerName = layer.Name;
            annotations.Add(ActivationExtractingTransformer.LayerAnnotationKind, TextDataViewType.Instance,
                (ref ReadOnlyMemory<char> v) => v = layerName.AsMemory());
            builder.AddColumn(mean, new VectorDataViewType(NumberDataViewType.Single, layer.Channels), annotations.ToAnnotations());
        }
        var position = new DataViewSchema.Annotations.Builder();
        AddSlotNames(position, ["y", "x"]);
        builder.AddColumn(t.PositionColumnName, new VectorDataViewType(NumberDataViewType.Int32, 2), position.ToAnnotations());
        return builder.ToSchema();
    }

    private static void AddSlotNames(DataViewSchema.Annotations.Builder builder, string[] names) =>
        builder.Add("SlotNames", new VectorDataViewType(TextDataViewType.Instance, names.Length),
            (ref VBuffer<ReadOnlyMemory<char>> v) => Fill(ref v, names));

    private static void Fill(ref VBuffer<ReadOnlyMemory<char>> v, string[] names)
    {
        var editor = VBufferEditor.Create(ref v, names.Length);
        for (int i = 0; i < names.Length; i++)
            editor.Values[i] = names[i].AsMemory();
        v = editor.Commit();
    }
}
