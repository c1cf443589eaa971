#!/usr/bin/env bash
# Restores, builds Release and publishes the command-line tool to artifacts/atlas/atlas.
#   ./build.sh          build + publish the tool
#   ./build.sh --test   the same, then run every test and the packaging test (tests/Packaging/pack-test.sh: pack,
#                       install the tool from a local feed, build a fresh project against the packages)
# Pass -p:OnnxRuntimeFlavor=Gpu (after the flags above) to build against Microsoft.ML.OnnxRuntime.Gpu.
set -euo pipefail
cd "$(dirname "$0")"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1

run_tests=0
extra=()
for a in "$@"; do
  case "$a" in
    --test) run_tests=1 ;;
    *) extra+=("$a") ;;
  esac
done

dotnet build Microsoft.ML.ActivationAtlas.sln -c Release "${extra[@]}"
dotnet publish src/Microsoft.ML.ActivationAtlas.Cli -c Release --no-build -o artifacts/atlas "${extra[@]}"
echo "atlas tool: $(pwd)/artifacts/atlas/atlas"

if [ "$run_tests" = 1 ]; then
  dotnet test Microsoft.ML.ActivationAtlas.sln -c Release --no-build "${extra[@]}"
  tests/Packaging/pack-test.sh
fi
