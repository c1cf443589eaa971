using System.Diagnostics;
using System.Text.RegularExpressions;
using Microsoft.ML.ActivationAtlas.Cluster;
using Microsoft.ML.ActivationAtlas.Tests.Cli;

namespace Microsoft.ML.ActivationAtlas.Tests.Cluster;

/// <summary>
/// <c>atlas submit slurm</c> on a real one-node Slurm cluster (Debian's slurmctld, slurmd and munge, started by
/// <c>tests/cluster/slurm-local.sh</c>): a 4-shard concept histogram, one task's worker killed while it runs and
/// requeued, and the merged result equal to one process's byte for byte.
/// </summary>
public sealed class SlurmTests(ShardedJobFixture fixture) : IClassFixture<ShardedJobFixture>
{
    [Fact]
    public void DryRunWritesAJobArrayAndADependentMerge()
    {
        string dir = Path.Combine(fixture.Root, "dry-" + Guid.NewGuid().ToString("N"));
        string output = Path.Combine(dir, "hist");
        var (code, err) = AtlasTool.Run("submit", "slurm", "--shards", "4", "--partition", "gpu", "--gres", "gpu:1", "--time", "01:00:00",
            "--dry-run", "--scripts", Path.Combine(dir, "scripts"), "--", "histogram", "--atlas", fixture.Atlas, "--images", fixture.Images, "--out", output);
        Assert.True(code == 0, err);
        string array = File.ReadAllText(Path.Combine(dir, "scripts", "array.sbatch"));
        Assert.Contains("#SBATCH --array=0-3", array);
        Assert.Contains("#SBATCH --requeue", array);
        Assert.Contains("#SBATCH --partition=gpu", array);
        Assert.Contains("#SBATCH --gres=gpu:1", array);
        Assert.Contains("#SBATCH --time=01:00:00", array);
        Assert.Contains("--shard \"$k/$n\"", array);
        Assert.Contains(output + ".shards", array);
        Assert.Contains("scontrol requeue", array);
        string merge = File.ReadAllText(Path.Combine(dir, "scripts", "merge.sbatch"));
        Assert.Contains($"merge --shards {output}.shards --out {output}", merge);
        Assert.DoesNotContain("--gres", merge);
        Assert.False(Directory.Exists(output));

        (code, err) = AtlasTool.Run("submit", "slurm", "--shards", "4", "--dry-run", "--", "layers", "--out", output);
        Assert.Equal(2, code);
        Assert.Contains("must be one of histogram, search, extract, build", err);
        (code, err) = AtlasTool.Run("submit", "slurm", "--shards", "4", "--dry-run", "--", "histogram", "--atlas", fixture.Atlas);
        Assert.Equal(2, code);
        Assert.Contains("--out", err);
    }

    [Fact]
    [System.Runtime.Versioning.SupportedOSPlatform("linux")]
    public void FourShardHistogramSurvivesAKilledTaskAndMergesToTheSingleProcessResult()
    {
        string dir = Path.Combine(fixture.Root, "slurm-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        string single = Path.Combine(dir, "single");
        var (code, err) = AtlasTool.Run("histogram", "--atlas", fixture.Atlas, "--images", fixture.Images, "--out", single);
        Assert.True(code == 0, err);
        string output = Path.Combine(dir, "hist");
        RunOnSlurm(dir, ["histogram", "--atlas", fixture.Atlas, "--images", fixture.Images, "--out", output], output);
        ShardedJobFixture.AssertSameFiles(single, output);
    }

    [Fact]
    [System.Runtime.Versioning.SupportedOSPlatform("linux")]
    public void FourShardSearchSurvivesAKilledTaskAndMergesToTheSingleProcessResult()
    {
        string dir = Path.Combine(fixture.Root, "slurm-search-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        string single = Path.Combine(dir, "single");
        string[] Search(string output) => ["search", "--atlas", fixture.Atlas, "--class", "ship", "--images", fixture.Images, "--out", output, "--top", "12"];
        var (code, err) = AtlasTool.Run(Search(single));
        Assert.True(code == 0, err);
        string output = Path.Combine(dir, "found");
        RunOnSlurm(dir, Search(output), output);
        ShardedExtractSearchTests.AssertSameSearch(single, output);
    }

    /// <summary>
    /// Submits <paramref name="command"/> as 4 shards to a one-node Slurm cluster started for the test, kills the worker
    /// of the first task seen running, lets it requeue, and waits for the merge job to write <paramref name="output"/>.
    /// </summary>
    [System.Runtime.Versioning.SupportedOSPlatform("linux")]
    private static void RunOnSlurm(string dir, string[] command, string output)
    {
        // The tasks run the same tool as a separate process.
        string exe = Path.Combine(dir, "atlas");
        File.WriteAllText(exe, $"#!/bin/sh\nexec dotnet '{Path.Combine(AppContext.BaseDirectory, "atlas.dll")}' \"$@\"\n");
        File.SetUnixFileMode(exe, File.GetUnixFileMode(exe) | UnixFileMode.UserExecute);

        // Short: munge's socket path must stay under 108 bytes.
        string cluster = Path.Combine(Path.GetTempPath(), "slurm-" + Guid.NewGuid().ToString("N")[..8]);
        string script = ClusterScript();
        var start = Shell(script, "start", cluster);
        Assert.True(start.Code == 0, "the one-node Slurm cluster did not start (Debian packages slurmctld, slurmd, slurm-client, munge):\n" + start.Output);
        string? previous = Environment.GetEnvironmentVariable("SLURM_CONF");
        Environment.SetEnvironmentVariable("SLURM_CONF", Path.Combine(cluster, "slurm.conf"));
        try
        {
            var job = SlurmArrayJob.Create(command, new SlurmArrayJobOptions { Shards = 4, AtlasExecutable = exe, MaxRestarts = 2 });
            var submitted = job.Submit(Path.Combine(dir, "scripts"));

            // Kill the worker of a task seen running, as a crash would: the process itself, found by its command line,
            // not its job step through Slurm (a step is listed before its process starts, so a signal can be lost; and
            // when Slurm's own kill of a step is slow to finish, slurmd drains the node and nothing runs again). The
            // worker can finish between being found and being killed, so count a task killed only once it has requeued
            // itself; otherwise take another.
            string? killed = null;
            var tried = new HashSet<int>();
            var clock = Stopwatch.StartNew();
            while (killed is null && clock.Elapsed < TimeSpan.FromMinutes(5))
            {
                var worker = Workers(output).FirstOrDefault(w => !tried.Contains(w.Pid));
                if (worker.Pid == 0)
                {
                    Thread.Sleep(200);
                    continue;
                }
                tried.Add(worker.Pid);
                try
                {
                    using var process = Process.GetProcessById(worker.Pid);
                    process.Kill();
                }
                catch (Exception e) when (e is ArgumentException or InvalidOperationException or System.ComponentModel.Win32Exception)
                {
                    continue; // it ended first
                }
                string candidate = $"{submitted.ArrayJobId}_{worker.Shard}";
                var wait = Stopwatch.StartNew();
                while (wait.Elapsed < TimeSpan.FromMinutes(2))
                {
                    string state = Shell("scontrol", "show", "job", candidate).Output;
                    if (Regex.Match(state, @"Restarts=(\d+)") is { Success: true } r && r.Groups[1].Value != "0")
                    {
                        killed = candidate;
                        break;
                    }
                    if (state.Contains("JobState=COMPLETED") || state.Contains("JobState=FAILED"))
                        break;
                    Thread.Sleep(200);
                }
            }
            Assert.True(killed is not null, $"no running array task could be killed in 5 minutes (killed processes: {string.Join(", ", tried)}):\n" + Diagnosis(cluster, dir));
            string task = killed;

            // The task requeues itself; Slurm holds a requeued job for a while, so release it now.
            while (clock.Elapsed < TimeSpan.FromMinutes(8) && !Directory.Exists(output))
            {
                string state = Shell("scontrol", "show", "job", task).Output;
                if (state.Contains("JobState=PENDING") && state.Contains("Reason=BeginTime") && Regex.Match(state, @"JobId=(\d+)") is { Success: true } id)
                    Shell("scontrol", "update", $"JobId={id.Groups[1].Value}", "StartTime=now");
                Thread.Sleep(500);
            }
            string logs = string.Join("\n", Directory.GetFiles(Path.Combine(dir, "scripts", "logs")).Select(f => Path.GetFileName(f) + ":\n" + File.ReadAllText(f)));
            Assert.True(Directory.Exists(output), "the merge job did not write the result:\n" + Diagnosis(cluster, dir));
            // Read once the result is there: the task's record (kept for minutes after it ends) counts its requeues.
            string show = Shell("scontrol", "show", "job", task).Output;
            int restarts = int.Parse(Regex.Match(show, @"Restarts=(\d+)") is { Success: true } m ? m.Groups[1].Value : "0");
            Assert.True(restarts == 1, $"killed {killed}, restarts {restarts}; last 'scontrol show job {task}':\n{show}\n{Diagnosis(cluster, dir)}");
            Assert.Contains("requeueing", logs);
        }
        finally
        {
            Shell("scancel", "-u", Environment.UserName);
            Environment.SetEnvironmentVariable("SLURM_CONF", previous);
            Shell(script, "stop", cluster);
            Directory.Delete(cluster, recursive: true);
        }
    }

    /// <summary>
    /// The running shard workers of the job whose result is <paramref name="output"/> (each writes a folder under
    /// <c>&lt;output&gt;.shards</c>): process id and shard number.
    /// </summary>
    private static IEnumerable<(int Pid, int Shard)> Workers(string output)
    {
        foreach (string folder in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(folder), out int pid))
                continue;
            string[] args;
            try
            {
                args = File.ReadAllText(Path.Combine(folder, "cmdline")).Split('\0');
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                continue; // it ended, or is not ours to read
            }
            int shard = Array.IndexOf(args, "--shard");
            int outAt = Array.IndexOf(args, "--out");
            if (args.Length > 0 && Path.GetFileName(args[0]) == "dotnet" && shard > 0 && shard + 1 < args.Length
                && outAt > 0 && outAt + 1 < args.Length && args[outAt + 1].StartsWith(Shard.ShardFolder(output) + "/", StringComparison.Ordinal)
                && int.TryParse(args[shard + 1].Split('/')[0], out int k))
                yield return (pid, k);
        }
    }

    // What the cluster says of its jobs and node, the ends of its daemons' logs and the tasks' logs: for a failure message.
    private static string Diagnosis(string cluster, string dir)
    {
        static string Tail(string file) => File.Exists(file) ? string.Join("\n", File.ReadLines(file).TakeLast(30)) : "(none)";
        string logFolder = Path.Combine(dir, "scripts", "logs");
        string logs = Directory.Exists(logFolder)
            ? string.Join("\n", Directory.GetFiles(logFolder).Select(f => Path.GetFileName(f) + ":\n" + File.ReadAllText(f)))
            : "(no task logs)";
        return "squeue: " + Shell("squeue", "-a", "-o", "%i %T %r %M").Output
            + "\nsqueue -s: " + Shell("squeue", "-s", "-o", "%i %M").Output
            + "\nsinfo: " + Shell("sinfo", "-N", "-o", "%N %T %E").Output
            + "\nprocesses: " + Shell("ps", "-eo", "pid,ppid,stat,etime,args").Output
            + "\nslurmctld.log:\n" + Tail(Path.Combine(cluster, "log", "slurmctld.log"))
            + "\nslurmd.log:\n" + Tail(Path.Combine(cluster, "log", "slurmd.log"))
            + "\ntask logs:\n" + logs;
    }

    private static string ClusterScript()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            string candidate = Path.Combine(dir.FullName, "tests", "cluster", "slurm-local.sh");
            if (File.Exists(candidate))
                return candidate;
        }
        throw new FileNotFoundException("tests/cluster/slurm-local.sh was not found above " + AppContext.BaseDirectory);
    }

    private static (int Code, string Output) Shell(string file, params string[] args)
    {
        var info = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args)
            info.ArgumentList.Add(a);
        using var p = Process.Start(info)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        string stderr = p.StandardError.ReadToEnd();
        p.WaitForExit();
        return (p.ExitCode, stdout.Result + stderr);
    }
}
