using System.Diagnostics;
using System.Globalization;
using System.Text;

namespace Microsoft.ML.ActivationAtlas.Cluster;

/// <summary>Settings of a Slurm job array that runs one sharded <c>atlas</c> command.</summary>
public sealed class SlurmArrayJobOptions
{
    /// <summary>Number of shards, one array task each (at least 1). Required.</summary>
    public int Shards { get; set; }

    /// <summary>Slurm partition (<c>--partition</c>); null leaves the cluster's default.</summary>
    public string? Partition { get; set; }

    /// <summary>Generic resources per task (<c>--gres</c>), e.g. <c>gpu:1</c>; null asks for none.</summary>
    public string? Gres { get; set; }

    /// <summary>Time limit per task (<c>--time</c>), e.g. <c>02:00:00</c>; null leaves the partition's limit.</summary>
    public string? Time { get; set; }

    /// <summary>CPUs per task (<c>--cpus-per-task</c>); 0 (the default) leaves the cluster's default.</summary>
    public int CpusPerTask { get; set; }

    /// <summary>
    /// How often a task whose worker failed (crashed, was killed or lost its node) requeues itself before its failure
    /// stands (default 3). Slurm's own <c>--requeue</c> covers node failures and preemption; this covers a worker that
    /// dies on a healthy node.
    /// </summary>
    public int MaxRestarts { get; set; } = 3;

    /// <summary>The job name (default <c>atlas-</c> and the command).</summary>
    public string? JobName { get; set; }

    /// <summary>
    /// The <c>atlas</c> executable the tasks run (default: the program running now, when it is the <c>atlas</c> tool;
    /// otherwise <c>atlas</c> on the cluster's PATH).
    /// </summary>
    public string? AtlasExecutable { get; set; }
}

/// <summary>What <see cref="SlurmArrayJob.Submit"/> submitted.</summary>
/// <param name="ArrayJobId">The job id of the array (one task per shard).</param>
/// <param name="MergeJobId">The job id of the merge, which starts once every array task has completed successfully.</param>
public sealed record SlurmSubmission(string ArrayJobId, string MergeJobId);

/// <summary>
/// A sharded <c>atlas</c> command as a Slurm job array plus a dependent merge job. Task <c>k</c> of <c>n</c> runs the
/// command with <c>--shard k/n</c> and writes <c>&lt;out&gt;.shards/k-of-n</c> (the command writes a temporary name and
/// renames it when complete, so a folder that exists is whole); a requeued task whose shard is already there exits at
/// once. The merge job runs <c>atlas merge</c>, which checks that every shard is present and made with the same
/// settings, and writes <c>&lt;out&gt;</c> exactly as one process would have. A <c>build</c> is sharded in its network
/// pass: task <c>k</c> runs <c>build ... --extract-only --shard k/n</c>, storing its pages in the build's work folder,
/// and the merge job runs the build itself, which reuses those pages.
/// </summary>
public sealed class SlurmArrayJob
{
    /// <summary>The commands that can be sharded.</summary>
    public static IReadOnlyList<string> ShardableCommands { get; } = ["histogram", "search", "extract", "build"];

    private readonly IReadOnlyList<string> _command;
    private readonly SlurmArrayJobOptions _options;

    private SlurmArrayJob(IReadOnlyList<string> command, string output, SlurmArrayJobOptions options)
    {
        _command = command;
        _options = options;
        OutputPath = output;
        ShardFolder = Shard.ShardFolder(output);
    }

    /// <summary>The command's final output (its <c>--out</c>), which the merge job writes.</summary>
    public string OutputPath { get; }

    /// <summary>Where the shards' outputs go: <c>&lt;out&gt;.shards</c>.</summary>
    public string ShardFolder { get; }

    /// <summary>Number of shards.</summary>
    public int Shards => _options.Shards;

    /// <summary>
    /// Describes a job array for <paramref name="atlasArguments"/>: the command (one of <see cref="ShardableCommands"/>)
    /// and its options as they would be given to <c>atlas</c>, including <c>--out</c> and without <c>--shard</c>.
    /// </summary>
    /// <exception cref="ArgumentException">The command cannot be sharded, has no <c>--out</c>, already has
    /// <c>--shard</c>, or an option is out of range.</exception>
    public static SlurmArrayJob Create(IReadOnlyList<string> atlasArguments, SlurmArrayJobOptions options)
    {
        ArgumentNullException.ThrowIfNull(atlasArguments);
        ArgumentNullException.ThrowIfNull(options);
        if (atlasArguments.Count == 0 || !ShardableCommands.Contains(atlasArguments[0]))
            throw new ArgumentException($"The command to shard must be one of {string.Join(", ", ShardableCommands)}; got '{(atlasArguments.Count == 0 ? "" : atlasArguments[0])}'.", nameof(atlasArguments));
        if (atlasArguments[0] == "build" && atlasArguments.Contains("--extract-only"))
            throw new ArgumentException("The build must not have --extract-only: each array task adds it, and the merge job runs the whole build.", nameof(atlasArguments));
        if (atlasArguments.Contains("--shard"))
            throw new ArgumentException("The command must not have --shard: each array task adds its own.", nameof(atlasArguments));
        int outAt = IndexOfOption(atlasArguments, "--out");
        if (outAt < 0 || outAt + 1 >= atlasArguments.Count)
            throw new ArgumentException("The command needs --out: the merge job writes the whole result there.", nameof(atlasArguments));
        if (options.Shards < 1)
            throw new ArgumentOutOfRangeException(nameof(options), options.Shards, "Shards must be at least 1.");
        if (options.MaxRestarts < 0)
            throw new ArgumentOutOfRangeException(nameof(options), options.MaxRestarts, "MaxRestarts must be zero or more.");
        if (options.CpusPerTask < 0)
            throw new ArgumentOutOfRangeException(nameof(options), options.CpusPerTask, "CpusPerTask must be zero (the default) or more.");
        var copy = new SlurmArrayJobOptions
        {
            Shards = options.Shards, Partition = options.Partition, Gres = options.Gres, Time = options.Time,
            CpusPerTask = options.CpusPerTask, MaxRestarts = options.MaxRestarts, JobName = options.JobName,
            AtlasExecutable = options.AtlasExecutable,
        };
        var command = atlasArguments.ToList();
        string output = Path.GetFullPath(command[outAt + 1]);
        command[outAt + 1] = output;
        return new SlurmArrayJob(command, output, copy);
    }

    /// <summary>The batch script of the job array (<c>sbatch</c> input).</summary>
    public string ArrayScript(string logFolder)
    {
        var s = new StringBuilder();
        s.Append("#!/usr/bin/env bash\n");
        Header(s, $"{JobName}", logFolder, "shard-%a.out");
        s.Append(CultureInfo.InvariantCulture, $"#SBATCH --array=0-{Shards - 1}\n");
        s.Append("#SBATCH --requeue\n");
        s.Append("set -u\n");
        s.Append("k=\"$SLURM_ARRAY_TASK_ID\"\n");
        s.Append(CultureInfo.InvariantCulture, $"n={Shards}\n");
        if (IsBuild)
        {
            s.Append("# Each task stores its share of the extraction's pages in the build's work folder (<out>.partial/cache);\n");
            s.Append("# pages already stored are kept, so a requeued task computes only the rest.\n");
            s.Append(CultureInfo.InvariantCulture, $"if [ -e {Quote(OutputPath)} ]; then echo \"already built: {OutputPath}\"; exit 0; fi\n");
        }
        else
        {
            s.Append(CultureInfo.InvariantCulture, $"out={Quote(ShardFolder)}/\"$k-of-$n\"\n");
            s.Append("# A shard folder appears only when complete (written under a temporary name, then renamed).\n");
            s.Append("if [ -e \"$out\" ]; then echo \"shard $k/$n already complete: $out\"; exit 0; fi\n");
            s.Append(CultureInfo.InvariantCulture, $"mkdir -p {Quote(ShardFolder)}\n");
        }
        s.Append("srun ").Append(CommandLine(withShard: true)).Append('\n');
        s.Append("rc=$?\n");
        s.Append(CultureInfo.InvariantCulture, $"if [ \"$rc\" -ne 0 ] && [ \"${{SLURM_RESTART_COUNT:-0}}\" -lt {_options.MaxRestarts} ]; then\n");
        s.Append("  echo \"shard $k/$n: worker exited with $rc; requeueing (restart ${SLURM_RESTART_COUNT:-0})\"\n");
        s.Append("  scontrol requeue \"${SLURM_ARRAY_JOB_ID}_${k}\" && exit 0\n");
        s.Append("fi\n");
        s.Append("exit \"$rc\"\n");
        return s.ToString();
    }

    /// <summary>The batch script of the merge job (<c>sbatch --dependency=afterok:&lt;array&gt;</c> input).</summary>
    public string MergeScript(string logFolder)
    {
        var s = new StringBuilder();
        s.Append("#!/usr/bin/env bash\n");
        Header(s, $"{JobName}-merge", logFolder, "merge.out", gres: false);
        s.Append("set -eu\n");
        s.Append(CultureInfo.InvariantCulture, $"if [ -e {Quote(OutputPath)} ]; then echo \"already merged: {OutputPath}\"; exit 0; fi\n");
        if (IsBuild)
        {
            s.Append("# The whole build: the network runs only for pages no task stored.\n");
            s.Append("srun ").Append(CommandLine(withShard: false)).Append('\n');
        }
        else
            s.Append("srun ").Append(Quote(Executable)).Append(" merge --shards ").Append(Quote(ShardFolder))
                .Append(" --out ").Append(Quote(OutputPath)).Append('\n');
        return s.ToString();
    }

    /// <summary>
    /// Writes <c>array.sbatch</c> and <c>merge.sbatch</c> into <paramref name="folder"/> (created when missing), with
    /// the tasks' logs going to <c>&lt;folder&gt;/logs</c>; returns the two paths.
    /// </summary>
    public (string ArrayScriptPath, string MergeScriptPath) WriteScripts(string folder)
    {
        ArgumentException.ThrowIfNullOrEmpty(folder);
        folder = Path.GetFullPath(folder);
        string logs = Path.Combine(folder, "logs");
        Directory.CreateDirectory(logs);
        string array = Path.Combine(folder, "array.sbatch"), merge = Path.Combine(folder, "merge.sbatch");
        WriteExecutable(array, ArrayScript(logs));
        WriteExecutable(merge, MergeScript(logs));
        return (array, merge);
    }

    /// <summary>
    /// Writes the scripts (see <see cref="WriteScripts"/>) and submits them with <c>sbatch</c>: the array, then the
    /// merge with <c>--dependency=afterok</c> on it.
    /// </summary>
    /// <exception cref="InvalidOperationException"><c>sbatch</c> is not on the PATH or refused a script (its message
    /// is included).</exception>
    public SlurmSubmission Submit(string folder)
    {
        var (array, merge) = WriteScripts(folder);
        string arrayId = Sbatch(["--parsable", array]);
        string mergeId = Sbatch(["--parsable", $"--dependency=afterok:{arrayId}", merge]);
        return new SlurmSubmission(arrayId, mergeId);
    }

    /// <summary>The command one shard runs (<c>$k</c> and <c>$n</c> stand for the task's shard and the count).</summary>
    public string CommandLine(bool withShard)
    {
        var s = new StringBuilder(Quote(Executable));
        for (int i = 0; i < _command.Count; i++)
        {
            s.Append(' ');
            if (withShard && !IsBuild && i > 0 && _command[i - 1] == "--out")
                s.Append("\"$out\"");
            else
                s.Append(Quote(_command[i]));
        }
        if (withShard)
            s.Append(IsBuild ? " --extract-only" : "").Append(" --shard \"$k/$n\"");
        return s.ToString();
    }

    /// <summary>A build's tasks extract pages into its work folder, and its merge job is the build itself.</summary>
    private bool IsBuild => _command[0] == "build";

    private string JobName => _options.JobName ?? "atlas-" + _command[0];

    private string Executable => _options.AtlasExecutable ?? DefaultExecutable();

    private void Header(StringBuilder s, string name, string logFolder, string logName, bool gres = true)
    {
        s.Append(CultureInfo.InvariantCulture, $"#SBATCH --job-name={name}\n");
        s.Append(CultureInfo.InvariantCulture, $"#SBATCH --output={Path.Combine(logFolder, logName)}\n");
        s.Append("#SBATCH --open-mode=append\n"); // a requeued task's log keeps what its earlier runs said
        if (_options.Partition is { Length: > 0 } p)
            s.Append(CultureInfo.InvariantCulture, $"#SBATCH --partition={p}\n");
        if (gres && _options.Gres is { Length: > 0 } g)
            s.Append(CultureInfo.InvariantCulture, $"#SBATCH --gres={g}\n");
        if (_options.Time is { Length: > 0 } t)
            s.Append(CultureInfo.InvariantCulture, $"#SBATCH --time={t}\n");
        if (_options.CpusPerTask > 0)
            s.Append(CultureInfo.InvariantCulture, $"#SBATCH --cpus-per-task={_options.CpusPerTask}\n");
    }

    private static string DefaultExecutable()
    {
        string? path = Environment.ProcessPath;
        return path is not null && Path.GetFileNameWithoutExtension(path) == "atlas" ? path : "atlas";
    }

    private static int IndexOfOption(IReadOnlyList<string> args, string name)
    {
        for (int i = 0; i < args.Count; i++)
            if (args[i] == name)
                return i;
        return -1;
    }

    /// <summary>Single-quotes a word for bash.</summary>
    internal static string Quote(string word) =>
        word.Length > 0 && word.All(c => char.IsAsciiLetterOrDigit(c) || "/._-,:=+@%".Contains(c))
            ? word
            : "'" + word.Replace("'", "'\\''", StringComparison.Ordinal) + "'";

    private static void WriteExecutable(string path, string text)
    {
        Rendering.AtomicOutput.WriteFile(path, stream =>
        {
            using var writer = new StreamWriter(stream, new UTF8Encoding(false)) { NewLine = "\n" };
            writer.Write(text);
        });
        if (!OperatingSystem.IsWindows())
            File.SetUnixFileMode(path, File.GetUnixFileMode(path) | UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute);
    }

    private static string Sbatch(IReadOnlyList<string> args)
    {
        var info = new ProcessStartInfo("sbatch") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args)
            info.ArgumentList.Add(a);
        Process process;
        try
        {
            process = Process.Start(info) ?? throw new InvalidOperationException("sbatch did not start.");
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new InvalidOperationException($"sbatch could not be run ({e.Message}); is Slurm's client on the PATH? The scripts were written; submit them by hand or use --dry-run.", e);
        }
        using (process)
        {
            string stdout = process.StandardOutput.ReadToEnd(), stderr = process.StandardError.ReadToEnd();
            process.WaitForExit();
            if (process.ExitCode != 0)
                throw new InvalidOperationException($"sbatch {args[^1]} failed (exit {process.ExitCode}): {stderr.Trim()}");
            // --parsable prints "jobid" or "jobid;cluster".
            return stdout.Trim().Split(';')[0];
        }
    }
}
