@echo off
rem Restores, builds Release and publishes the command-line tool to artifacts\atlas\atlas.exe.
rem   build.cmd          build + publish the tool
rem   build.cmd --test   the same, then run every test
setlocal
cd /d "%~dp0"
set DOTNET_CLI_TELEMETRY_OPTOUT=1
set DOTNET_NOLOGO=1
set RUN_TESTS=0
if "%~1"=="--test" set RUN_TESTS=1
dotnet build Microsoft.ML.ActivationAtlas.sln -c Release || exit /b 1
dotnet publish src\Microsoft.ML.ActivationAtlas.Cli -c Release --no-build -o artifacts\atlas || exit /b 1
echo atlas tool: %cd%\artifacts\atlas\atlas.exe
if "%RUN_TESTS%"=="1" dotnet test Microsoft.ML.ActivationAtlas.sln -c Release --no-build || exit /b 1
