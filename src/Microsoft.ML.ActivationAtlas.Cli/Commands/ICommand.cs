namespace Microsoft.ML.ActivationAtlas.Cli.Commands;

/// <summary>
/// One verb of the <c>atlas</c> tool (<c>layers</c>, <c>extract</c>, <c>build</c>, ...). Implementations are
/// discovered by reflection, so adding a verb is adding a class.
/// </summary>
internal interface ICommand
{
    /// <summary>The verb.</summary>
    string Name { get; }

    /// <summary>One line for the usage text.</summary>
    string Summary { get; }

    /// <summary>The full usage text of the verb, printed for <c>--help</c> or a usage error.</summary>
    string Usage { get; }

    /// <summary>Runs the verb; returns the process exit code.</summary>
    int Run(CommandArgs args, CancellationToken cancellationToken);
}
