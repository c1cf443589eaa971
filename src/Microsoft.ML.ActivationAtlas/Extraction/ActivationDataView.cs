namespace Microsoft.ML.ActivationAtlas.Extraction;

/// <summary>The lazy output of <see cref="ActivationExtractingTransformer.Transform"/>.</summary>
internal sealed class ActivationDataView : IDataView
{
    private readonly ActivationExtractingTransformer _transformer;
    private readonly IDataView _source;

    public ActivationDataView(ActivationExtractingTransformer transformer, IDataView source)
    {
        _transformer = transformer;
        _source = source;
        Schema = transformer.GetOutputSchema(source.Schema);
    }

    public bool CanShuffle => false;

    public DataViewSchema Schema { get; }

    public long? GetRowCount() =>
        _transformer.Sampling != ActivationSampling.AllPositions && _transformer.Settings.BadRows == BadRowHandling.Fail
            ? _source.GetRowCount()
            : null;

    public DataViewRowCursor GetRowCursor(IEnumerable<DataViewSchema.Column> columnsNeeded, Random? rand = null) =>
        new ActivationCursor(_transformer, _source, Schema, columnsNeeded);

    public DataViewRowCursor[] GetRowCursorSet(IEnumerable<DataViewSchema.Column> columnsNeeded, int n, Random? rand = null) =>
        [GetRowCursor(columnsNeeded, rand)];
}
