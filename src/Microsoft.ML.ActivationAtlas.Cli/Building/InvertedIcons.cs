using System.Globalization;
using Microsoft.ML.ActivationAtlas.Binning;
using Microsoft.ML.ActivationAtlas.Cli.Commands;
using Microsoft.ML.ActivationAtlas.Common;
using Microsoft.ML.ActivationAtlas.Extraction;
using Microsoft.ML.ActivationAtlas.Inversion;
using Microsoft.ML.ActivationAtlas.Onnx;
using Microsoft.ML.ActivationAtlas.Rendering;
using Microsoft.ML.Data;

namespace Microsoft.ML.ActivationAtlas.Cli.Building;

/// <summary>
/// Feature-inversion icons of one grid's cells (their mean activations), rendered in chunks and kept in the stage cache
/// one PNG per cell, so an interrupted build resumes where it stopped.
/// </summary>
internal static class InvertedIcons
{
    private const int Chunk = 16;

    public static int Render(MLContext ml, AtlasLevel level, AtlasIcons icons, ActivationModel model, string layer, int steps, int size, int minCount,
        int seed, OnnxSessionOptions session, string cacheFolder, string key, IProgress<double> progress, CancellationToken cancellationToken)
    {
        string folder = Path.Combine(cacheFolder, "icons-" + level.GridSize.ToString(CultureInfo.InvariantCulture));
        Directory.CreateDirectory(folder);
        string keyFile = Path.Combine(folder, "key.txt");
        if (!File.Exists(keyFile) || File.ReadAllText(keyFile) != key)
        {
            foreach (var f in Directory.GetFiles(folder, "*.png"))
                File.Delete(f);
            File.WriteAllText(keyFile, key);
        }
        var cells = level.Cells.Where(c => c.Count >= minCount).ToArray();
        string PathOf(AtlasCell c) => Path.Combine(folder, $"{c.X.ToString(CultureInfo.InvariantCulture)}_{c.Y.ToString(CultureInfo.InvariantCulture)}.png");
        var todo = cells.Where(c => !File.Exists(PathOf(c))).ToArray();
        int done = cells.Length - todo.Length;
        progress.Report(cells.Length == 0 ? 1 : done / (double)cells.Length);
        for (int start = 0; start < todo.Length; start += Chunk)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var chunk = todo.Skip(start).Take(Chunk).ToArray();
            int dim = chunk[0].MeanActivation.Length;
            var view = new InMemoryDataView.Builder(chunk.Length)
                .Add("Direction", new VectorDataViewType(NumberDataViewType.Single, dim),
                    (int r, ref VBuffer<float> v) => InMemoryDataView.Fill(ref v, chunk[r].MeanActivation.Span))
                .Build();
            int before = done;
            double best = 0;
            var inversion = ml.Transforms.InvertFeatures(new FeatureInversionEstimator.Options
            {
                Model = model,
                Layer = layer,
                Steps = steps,
                Size = size,
                Seed = seed,
                BatchSize = Chunk,
                Session = session,
                // Within a chunk: the furthest step reached (attempts restart the steps), as a share of the chunk.
                Progress = new BuildCommand.SyncProgress<IconRenderProgress>(x =>
                {
                    best = Math.Max(best, x.IconsTotal > 0 ? (x.IconsDone + (double)x.Step / Math.Max(1, x.Steps)) / x.IconsTotal : 0);
                    progress.Report((before + Math.Min(1, best) * chunk.Length) / cells.Length);
                }),
                CancellationToken = cancellationToken,
            });
            using var transformer = inversion.Fit(view);
            var rendered = transformer.Transform(view);
            using var cursor = rendered.GetRowCursor([rendered.Schema["Icon"]]);
            var getter = cursor.GetGetter<MLImage>(rendered.Schema["Icon"]);
            int i = 0;
            while (cursor.MoveNext())
            {
                MLImage image = null!;
                getter(ref image);
                string target = PathOf(chunk[i++]);
                string tmp = target + ".tmp.png";
                image.Save(tmp);
                File.Move(tmp, target, overwrite: true);
            }
            done += chunk.Length;
            progress.Report(done / (double)cells.Length);
        }
        foreach (var c in cells)
            icons.Set(level.GridSize, c.X, c.Y, File.ReadAllBytes(PathOf(c)));
        return cells.Length;
    }
}
