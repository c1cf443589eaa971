using Microsoft.ML.ActivationAtlas.Cluster;

namespace Microsoft.ML.ActivationAtlas.Cli.Commands;

/// <summary><c>atlas merge</c>: the shards of a sharded command into the output one process would have written.</summary>
internal sealed class MergeCommand : ICommand
{
    public string Name => "merge";

    public string Summary => "merge the shards of 'histogram', 'search' or 'extract' --shard k/n into one result";

    public string Usage => """
        usage: atlas merge --shards <folder> --out <dir>

          --shards <folder>   the folder holding the shards (k-of-n folders, each with its shard.json)
          --out <dir|file>    the folder to create (histogram, search) or the .npy path (extract); must not exist

        Checks that every shard 0..n-1 is present and complete and that all were made with the same atlas, images and
        options (naming the missing or mismatched shard otherwise), then writes what one process would have written.
        """;

    public int Run(CommandArgs args, CancellationToken cancellationToken)
    {
        string shards = args.Required("shards");
        string outDir = args.Required("out");
        args.RejectUnknown();
        int n;
        using (var stages = new ConsoleStages())
            n = ShardMerge.Merge(new MLContext(), shards, outDir, stages);
        Console.Error.WriteLine($"atlas merge: {n} shards -> {outDir}");
        return 0;
    }
}
