namespace Microsoft.ML.ActivationAtlas.Building;

/// <summary>Where a stage of an atlas build stands.</summary>
public enum AtlasStageStatus
{
    /// <summary>The stage is running; <see cref="AtlasBuildProgress.Fraction"/> says how far.</summary>
    Running,

    /// <summary>The stage finished; <see cref="AtlasBuildProgress.Note"/> may summarise its result.</summary>
    Done,

    /// <summary>The stage's result was found in the stage store and reused.</summary>
    Reused,
}

/// <summary>Progress of one stage of <see cref="AtlasBuilder"/> (reported on the working thread, in order).</summary>
/// <param name="Stage">The stage: <c>images</c>, <c>activations</c>, <c>head</c>, <c>attribution</c>, <c>umap</c>, <c>grid</c>, <c>icons</c>, <c>inversion</c>, <c>outputs</c>, ...</param>
/// <param name="Status">Running, done or reused.</param>
/// <param name="Fraction">The share done, 0 to 1.</param>
/// <param name="Note">A short summary (e.g. <c>10,000 x 512</c>) with <see cref="AtlasStageStatus.Done"/> and <see cref="AtlasStageStatus.Reused"/>.</param>
public sealed record AtlasBuildProgress(string Stage, AtlasStageStatus Status, double Fraction, string? Note = null);

/// <summary>Reports the stages of one piece of work to an optional sink.</summary>
internal sealed class StageReporter(IProgress<AtlasBuildProgress>? sink)
{
    /// <summary>Starts a stage; report fractions to the result and end it with <see cref="Stage.Done"/>.</summary>
    public Stage Start(string name) => new(sink, name);

    /// <summary>Says a stage's stored result is reused.</summary>
    public void Reused(string name, string? note = null) => sink?.Report(new AtlasBuildProgress(name, AtlasStageStatus.Reused, 1, note));

    /// <summary>One running stage.</summary>
    public sealed class Stage : IProgress<double>
    {
        private readonly IProgress<AtlasBuildProgress>? _sink;
        private readonly string _name;
        private bool _done;

        internal Stage(IProgress<AtlasBuildProgress>? sink, string name)
        {
            _sink = sink;
            _name = name;
            Report(0);
        }

        /// <summary>Reports the share done.</summary>
        public void Report(double value)
        {
            if (!_done)
                _sink?.Report(new AtlasBuildProgress(_name, AtlasStageStatus.Running, Math.Clamp(value, 0, 1)));
        }

        /// <summary>Ends the stage.</summary>
        public void Done(string? note = null)
        {
            if (_done)
                return;
            _done = true;
            _sink?.Report(new AtlasBuildProgress(_name, AtlasStageStatus.Done, 1, note));
        }
    }
}

/// <summary>Reports on the calling thread (<c>Progress&lt;T&gt;</c> posts to the thread pool and can report after a stage ended).</summary>
internal sealed class SyncProgress<T>(Action<T> report) : IProgress<T>
{
    public void Report(T value) => report(value);
}
