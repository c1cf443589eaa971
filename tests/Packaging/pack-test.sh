#!/usr/bin/env bash
# Packaging test: packs the libraries and the `atlas` tool into a local folder feed, installs the tool from that feed
# into an empty directory and runs `atlas layers --model resnet18`, then creates a fresh console project that
# references the library package from the feed, fits a three-stage atlas pipeline (extraction, UMAP, grid) on a few
# CIFAR-10 images, saves it, loads it back and checks that the loaded pipeline puts the images in the same cells.
# Both programs run with an empty NUGET_PACKAGES, so the ResNet18 files must come with what was installed.
#   tests/Packaging/pack-test.sh            (after ./build.sh; needs ../shared/datasets/cifar10-test)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
shared=${ACTIVATION_ATLAS_SHARED:-$root/../shared}
images=$shared/datasets/cifar10-test
if [ ! -d "$images" ]; then
  echo "pack-test: $images is missing (set ACTIVATION_ATLAS_SHARED to the shared folder)" >&2
  exit 1
fi
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1

# A version of its own, so a package restored by an earlier run is never taken for this one.
version=0.0.0-packtest.$(date +%s).$$
work=$(mktemp -d)
packages_cache=${NUGET_PACKAGES:-$HOME/.nuget/packages}
cleanup() {
  rm -rf "$work"
  for id in microsoft.ml.activationatlas microsoft.ml.activationatlas.onnx microsoft.ml.activationatlas.gradients \
            microsoft.ml.activationatlas.projection microsoft.ml.activationatlas.inversion microsoft.ml.activationatlas.cli; do
    rm -rf "$packages_cache/$id/$version"
    rmdir "$packages_cache/$id" 2>/dev/null || true
  done
}
trap cleanup EXIT
feed=$work/feed
step() { echo "pack-test: $*"; }

step "packing version $version into $feed"
dotnet pack "$root/Microsoft.ML.ActivationAtlas.sln" -c Release --no-build -o "$feed" -p:Version="$version" -v:q -nologo
ls -l "$feed"
for id in Microsoft.ML.ActivationAtlas Microsoft.ML.ActivationAtlas.Onnx Microsoft.ML.ActivationAtlas.Gradients \
          Microsoft.ML.ActivationAtlas.Projection Microsoft.ML.ActivationAtlas.Inversion Microsoft.ML.ActivationAtlas.Cli; do
  for ext in nupkg snupkg; do
    [ -f "$feed/$id.$version.$ext" ] || { echo "pack-test: $id.$version.$ext was not produced" >&2; exit 1; }
  done
done

# An empty NuGet cache for running what was installed: the model must not be found in the developer's cache.
empty_cache=$work/empty-nuget-cache
mkdir -p "$empty_cache"

step "installing the atlas tool from the feed"
dotnet tool install --tool-path "$work/tools" --add-source "$feed" Microsoft.ML.ActivationAtlas.Cli --version "$version"
mkdir -p "$work/empty" && cd "$work/empty"
NUGET_PACKAGES=$empty_cache "$work/tools/atlas" layers --model resnet18 > "$work/layers.txt"
head -3 "$work/layers.txt"
grep -q "ReLU393_Output_0" "$work/layers.txt" || { echo "pack-test: 'atlas layers --model resnet18' did not list ReLU393_Output_0" >&2; exit 1; }

step "building a console project that references Microsoft.ML.ActivationAtlas $version from the feed"
app=$work/app
mkdir -p "$app"
cp "$root/tests/Packaging/App/PackTestApp.csproj" "$root/tests/Packaging/App/Program.cs" "$app/"
cat > "$app/nuget.config" <<XML
<?xml version="1.0" encoding="utf-8"?>
<configuration>
  <packageSources>
    <add key="local-feed" value="$feed" />
    <add key="nuget.org" value="https://api.nuget.org/v3/index.json" />
  </packageSources>
</configuration>
XML
dotnet build "$app" -c Release -v:q -nologo -p:AtlasPackageVersion="$version"
NUGET_PACKAGES=$empty_cache dotnet "$app/bin/Release/net10.0/PackTestApp.dll" "$images" "$work/atlas.zip"
[ -s "$work/atlas.zip" ] || { echo "pack-test: the console project wrote no atlas.zip" >&2; exit 1; }
step "ok: 6 packages, the tool and a fresh console project work from the feed"
