using Microsoft.ML.ActivationAtlas.Cluster;

namespace Microsoft.ML.ActivationAtlas.Cli.Commands;

/// <summary><c>atlas submit slurm</c>: a sharded command as a Slurm job array plus a dependent merge job.</summary>
internal sealed class SubmitCommand : ICommand
{
    public string Name => "submit";

    public string Summary => "run a command in shards on a Slurm cluster (job array + merge job)";

    public string Usage => $"""
        usage: atlas submit slurm --shards <n> [options] -- <command> <its options>

          --shards <n>          shards, one array task each
          --partition <p>       Slurm partition (default: the cluster's)
          --gres <g>            generic resources per task, e.g. gpu:1
          --time <t>            time limit per task, e.g. 02:00:00
          --cpus-per-task <c>   CPUs per task
          --max-restarts <r>    times a task whose worker died requeues itself (default {new SlurmArrayJobOptions().MaxRestarts})
          --atlas-exe <path>    the atlas tool on the compute nodes (default: this program)
          --scripts <dir>       where to write array.sbatch, merge.sbatch and logs/ (default: <out>.slurm)
          --dry-run             write the scripts, do not submit them

        The command ({string.Join(", ", SlurmArrayJob.ShardableCommands)}) is given as to atlas, with its --out; task k runs
        it with --shard k/n --out <out>.shards/k-of-n, and the merge job writes <out> with 'atlas merge'. A build's task k
        runs it with --extract-only --shard k/n (its share of the extraction pages, stored in <out>.partial/cache),
        and the merge job runs the build itself (see docs/sharded-jobs.md).
        """;

    public int Run(CommandArgs args, CancellationToken cancellationToken)
    {
        var words = args.Words;
        if (words.Count != 1 || words[0] != "slurm")
            throw new UsageException(words.Count == 0 ? "missing scheduler: atlas submit slurm ..." : $"unknown scheduler '{words[0]}' (slurm)");
        var options = new SlurmArrayJobOptions
        {
            Shards = args.Int("shards", 0),
            Partition = args.Optional("partition"),
            Gres = args.Optional("gres"),
            Time = args.Optional("time"),
            CpusPerTask = args.Int("cpus-per-task", 0),
            MaxRestarts = args.Int("max-restarts", new SlurmArrayJobOptions().MaxRestarts),
            AtlasExecutable = args.Optional("atlas-exe"),
        };
        string? scripts = args.Optional("scripts");
        bool dryRun = args.Has("dry-run");
        var command = args.Rest ?? throw new UsageException("missing '--' and the command to run, e.g. -- histogram --atlas A --images DIR --out H");
        args.RejectUnknown();
        if (options.Shards < 1)
            throw new UsageException("option --shards: give the number of shards, at least 1");
        SlurmArrayJob job;
        try
        {
            job = SlurmArrayJob.Create(command, options);
        }
        catch (ArgumentException e)
        {
            throw new UsageException(e.Message);
        }
        scripts ??= job.OutputPath + ".slurm";
        if (dryRun)
        {
            var (array, merge) = job.WriteScripts(scripts);
            Console.WriteLine(array);
            Console.WriteLine(merge);
            Console.Error.WriteLine($"atlas submit: wrote {array} and {merge} ({job.Shards} shards; not submitted)");
            return 0;
        }
        var submitted = job.Submit(scripts);
        Console.WriteLine($"{submitted.ArrayJobId} {submitted.MergeJobId}");
        Console.Error.WriteLine($"atlas submit: array job {submitted.ArrayJobId} ({job.Shards} shards), merge job {submitted.MergeJobId} -> {job.OutputPath}");
        return 0;
    }
}
