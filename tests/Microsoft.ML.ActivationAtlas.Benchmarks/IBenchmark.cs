namespace Microsoft.ML.ActivationAtlas.Benchmarks;

/// <summary>
/// One benchmark verb. Implementations are discovered by reflection, so adding a benchmark is adding a class.
/// A benchmark prints progress as it likes, and its result as one JSON line, last.
/// </summary>
internal interface IBenchmark
{
    /// <summary>The verb on the command line, e.g. <c>umap</c>.</summary>
    string Name { get; }

    /// <summary>One line for the usage text.</summary>
    string Description { get; }

    /// <summary>Runs the benchmark with the arguments after the verb; returns the process exit code.</summary>
    int Run(string[] args);
}
