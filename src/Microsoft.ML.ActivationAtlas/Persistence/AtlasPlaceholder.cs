using Microsoft.ML.Data;
using Microsoft.ML.Transforms;

namespace Microsoft.ML.ActivationAtlas.Persistence;

/// <summary>
/// Stands in, inside ML.NET's part of an atlas model file, for one activation-atlas transformer whose
/// state lives in the file's own <c>ActivationAtlas/</c> entries. <c>LoadAtlas</c> swaps it for the real
/// transformer. A model loaded with plain <c>mlContext.Model.Load</c> cannot run: the placeholder reads an input
/// column that no data has, whose name says what to call instead, so ML.NET's "could not find input column"
/// error names the fix.
/// </summary>
[CustomMappingFactoryAttribute(ContractName)]
internal sealed class AtlasPlaceholderFactory : CustomMappingFactory<AtlasPlaceholderFactory.Input, AtlasPlaceholderFactory.Output>
{
    /// <summary>The contract name ML.NET writes into the model file for the placeholder.</summary>
    public const string ContractName = "Microsoft.ML.ActivationAtlas.StagePlaceholder";

    /// <summary>The column the placeholder reads: no real data has it.</summary>
    public const string MissingColumn = "activation-atlas stage: load this model with mlContext.Model.LoadAtlas(path, out schema) from Microsoft.ML.ActivationAtlas";

    /// <summary>The placeholder's input row.</summary>
    public sealed class Input
    {
        /// <summary>Never present in real data.</summary>
        [ColumnName(MissingColumn)]
        public bool Unused { get; set; }
    }

    /// <summary>The placeholder's only column, which fails when read.</summary>
    public sealed class Output
    {
        /// <summary>Never produced: reading it throws.</summary>
        public bool ActivationAtlasStage { get; set; }
    }

    /// <inheritdoc />
    public override Action<Input, Output> GetMapping() => Map;

    internal static void Map(Input input, Output output) =>
        throw new InvalidOperationException(
            "This model contains activation-atlas stages whose state is stored beside ML.NET's entries. " +
            "Load it with mlContext.Model.LoadAtlas(path, out schema) (Microsoft.ML.ActivationAtlas).");

    /// <summary>Creates the placeholder transformer written in place of an atlas stage.</summary>
    internal static ITransformer Create(MLContext mlContext) =>
        mlContext.Transforms.CustomMapping<Input, Output>(Map, ContractName)
            .Fit(mlContext.Data.LoadFromEnumerable(Array.Empty<Input>()));
}
