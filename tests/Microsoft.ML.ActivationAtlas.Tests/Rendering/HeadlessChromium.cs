using System.Diagnostics;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Microsoft.ML.ActivationAtlas.Tests.Rendering;

/// <summary>
/// A headless Chromium driven over the DevTools protocol (a WebSocket to the page target): navigate, evaluate
/// script, dispatch real mouse and keyboard input, take screenshots. Fresh profile per instance, no network.
/// </summary>
internal sealed class HeadlessChromium : IAsyncDisposable
{
    private readonly Process _process;
    private readonly string _profile;
    private readonly ClientWebSocket _socket = new();
    private readonly Dictionary<int, TaskCompletionSource<JsonNode>> _pending = new();
    private readonly List<(string Method, JsonNode Params)> _events = new();
    private readonly CancellationTokenSource _stop = new();
    private Task? _reader;
    private int _nextId;

    private HeadlessChromium(Process process, string profile)
    {
        _process = process;
        _profile = profile;
    }

    public static string Executable => Environment.GetEnvironmentVariable("ATLAS_CHROMIUM") is { Length: > 0 } p ? p : "/usr/bin/chromium";

    public static async Task<HeadlessChromium> StartAsync(int width = 1280, int height = 860)
    {
        if (!File.Exists(Executable))
            throw new FileNotFoundException($"Chromium is needed for the viewer tests and was not found at {Executable} (apt-get install chromium, or set ATLAS_CHROMIUM).");
        string profile = Path.Combine(Path.GetTempPath(), "atlas-chromium-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(profile);
        var psi = new ProcessStartInfo(Executable)
        {
            RedirectStandardError = true,
            RedirectStandardOutput = true,
            UseShellExecute = false,
        };
        foreach (var a in new[]
        {
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--disable-extensions", "--disable-default-apps", "--mute-audio",
            "--hide-scrollbars", "--force-device-scale-factor=1", $"--window-size={width},{height}",
            "--remote-debugging-port=0", $"--user-data-dir={profile}", "about:blank",
        })
            psi.ArgumentList.Add(a);
        var process = Process.Start(psi) ?? throw new InvalidOperationException("Chromium did not start.");
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        var chrome = new HeadlessChromium(process, profile);
        try
        {
            await chrome.ConnectAsync();
        }
        catch
        {
            await chrome.DisposeAsync();
            throw;
        }
        return chrome;
    }

    private async Task ConnectAsync()
    {
        string portFile = Path.Combine(_profile, "DevToolsActivePort");
        var deadline = DateTime.UtcNow.AddSeconds(90);
        int port = 0;
        while (port == 0)
        {
            if (_process.HasExited)
                throw new InvalidOperationException($"Chromium exited with code {_process.ExitCode} before opening its DevTools port.");
            if (DateTime.UtcNow > deadline)
                throw new TimeoutException("Chromium did not open its DevTools port within 90 s.");
            try
            {
                var lines = await File.ReadAllLinesAsync(portFile);
                if (lines.Length >= 1 && int.TryParse(lines[0], out int p))
                    port = p;
            }
            catch (IOException)
            {
            }
            if (port == 0)
                await Task.Delay(100);
        }
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(30) };
        string? wsUrl = null;
        while (wsUrl is null)
        {
            var list = JsonNode.Parse(await http.GetStringAsync($"http://127.0.0.1:{port}/json/list"))!.AsArray();
            wsUrl = list.FirstOrDefault(t => (string?)t!["type"] == "page")?["webSocketDebuggerUrl"]?.GetValue<string>();
            if (wsUrl is null)
            {
                if (DateTime.UtcNow > deadline)
                    throw new TimeoutException("Chromium has no page target.");
                await Task.Delay(100);
            }
        }
        await _socket.ConnectAsync(new Uri(wsUrl), CancellationToken.None);
        _reader = Task.Run(ReadLoop);
        await SendAsync("Page.enable");
        await SendAsync("Runtime.enable");
    }

    private async Task ReadLoop()
    {
        var buffer = new byte[1 << 20];
        var message = new MemoryStream();
        try
        {
            while (!_stop.IsCancellationRequested && _socket.State == WebSocketState.Open)
            {
                var r = await _socket.ReceiveAsync(buffer, _stop.Token);
                if (r.MessageType == WebSocketMessageType.Close)
                    break;
                message.Write(buffer, 0, r.Count);
                if (!r.EndOfMessage)
                    continue;
                var node = JsonNode.Parse(message.ToArray())!;
                message.SetLength(0);
                if (node["id"] is { } idNode)
                {
                    TaskCompletionSource<JsonNode>? tcs;
                    lock (_pending)
                        _pending.Remove(idNode.GetValue<int>(), out tcs);
                    tcs?.TrySetResult(node);
                }
                else if (node["method"] is { } method)
                {
                    lock (_events)
                        _events.Add((method.GetValue<string>(), node["params"] ?? new JsonObject()));
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
        catch (WebSocketException)
        {
        }
        lock (_pending)
            foreach (var t in _pending.Values)
                t.TrySetException(new IOException("The DevTools connection closed."));
    }

    /// <summary>Sends a DevTools command and returns its result.</summary>
    public async Task<JsonNode> SendAsync(string method, object? parameters = null, int timeoutSeconds = 60)
    {
        int id = Interlocked.Increment(ref _nextId);
        var tcs = new TaskCompletionSource<JsonNode>(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_pending)
            _pending[id] = tcs;
        var payload = JsonSerializer.SerializeToUtf8Bytes(new { id, method, @params = parameters ?? new { } });
        await _socket.SendAsync(payload, WebSocketMessageType.Text, true, CancellationToken.None);
        var done = await Task.WhenAny(tcs.Task, Task.Delay(TimeSpan.FromSeconds(timeoutSeconds)));
        if (done != tcs.Task)
            throw new TimeoutException($"DevTools command {method} timed out.");
        var response = await tcs.Task;
        if (response["error"] is { } error)
            throw new InvalidOperationException($"DevTools command {method} failed: {error.ToJsonString()}");
        return response["result"] ?? new JsonObject();
    }

    /// <summary>Opens a file and waits for its load event.</summary>
    public async Task NavigateAsync(string filePath)
    {
        lock (_events)
            _events.Clear();
        await SendAsync("Page.navigate", new { url = new Uri(Path.GetFullPath(filePath)).AbsoluteUri });
        await WaitForEventAsync("Page.loadEventFired", 60);
    }

    private async Task WaitForEventAsync(string method, int timeoutSeconds)
    {
        var deadline = DateTime.UtcNow.AddSeconds(timeoutSeconds);
        while (true)
        {
            lock (_events)
                if (_events.Any(e => e.Method == method))
                    return;
            if (DateTime.UtcNow > deadline)
                throw new TimeoutException($"No {method} within {timeoutSeconds} s.");
            await Task.Delay(50);
        }
    }

    /// <summary>Evaluates an expression (awaiting promises) and returns its JSON value.</summary>
    public async Task<JsonNode?> EvaluateAsync(string expression)
    {
        var result = await SendAsync("Runtime.evaluate", new { expression, returnByValue = true, awaitPromise = true });
        if (result["exceptionDetails"] is { } ex)
            throw new InvalidOperationException($"Script failed: {expression}\n{ex.ToJsonString()}");
        return result["result"]?["value"];
    }

    /// <summary>Evaluates an expression in the page's <paramref name="index"/>-th frame (in document order), e.g. an iframe of another origin.</summary>
    public async Task<JsonNode?> EvaluateInFrameAsync(int index, string expression)
    {
        var tree = await SendAsync("Page.getFrameTree");
        string frameId = tree["frameTree"]!["childFrames"]!.AsArray()[index]!["frame"]!["id"]!.GetValue<string>();
        int? context = null;
        lock (_events)
            foreach (var (method, p) in _events)
                if (method == "Runtime.executionContextCreated" && (string?)p["context"]?["auxData"]?["frameId"] == frameId
                    && p["context"]?["auxData"]?["isDefault"]?.GetValue<bool>() == true)
                    context = p["context"]!["id"]!.GetValue<int>();
        if (context is null)
            throw new InvalidOperationException($"Frame {index} has no script context yet.");
        var result = await SendAsync("Runtime.evaluate", new { expression, returnByValue = true, awaitPromise = true, contextId = context.Value });
        if (result["exceptionDetails"] is { } ex)
            throw new InvalidOperationException($"Script failed in frame {index}: {expression}\n{ex.ToJsonString()}");
        return result["result"]?["value"];
    }

    /// <summary>Polls <paramref name="condition"/> in the page's <paramref name="index"/>-th frame until it is true.</summary>
    public async Task WaitInFrameAsync(int index, string condition, int timeoutSeconds = 60)
    {
        var deadline = DateTime.UtcNow.AddSeconds(timeoutSeconds);
        while (true)
        {
            try
            {
                if ((await EvaluateInFrameAsync(index, $"!!({condition})"))?.GetValue<bool>() == true)
                    return;
            }
            catch (InvalidOperationException) when (DateTime.UtcNow < deadline)
            {
            }
            if (DateTime.UtcNow > deadline)
                throw new TimeoutException($"Frame {index} never satisfied: {condition}");
            await Task.Delay(100);
        }
    }

    /// <summary>Polls <paramref name="condition"/> until it is true.</summary>
    public async Task WaitForAsync(string condition, int timeoutSeconds = 60)
    {
        var deadline = DateTime.UtcNow.AddSeconds(timeoutSeconds);
        while ((await EvaluateAsync($"!!({condition})"))?.GetValue<bool>() != true)
        {
            if (DateTime.UtcNow > deadline)
                throw new TimeoutException($"The page never satisfied: {condition}");
            await Task.Delay(100);
        }
    }

    /// <summary>A real left click at page coordinates.</summary>
    public async Task ClickAsync(double x, double y)
    {
        await SendAsync("Input.dispatchMouseEvent", new { type = "mouseMoved", x, y });
        await SendAsync("Input.dispatchMouseEvent", new { type = "mousePressed", x, y, button = "left", clickCount = 1 });
        await SendAsync("Input.dispatchMouseEvent", new { type = "mouseReleased", x, y, button = "left", clickCount = 1 });
    }

    /// <summary>A mouse wheel turn at page coordinates (negative <paramref name="deltaY"/> zooms in).</summary>
    public Task WheelAsync(double x, double y, double deltaY)
        => SendAsync("Input.dispatchMouseEvent", new { type = "mouseWheel", x, y, deltaX = 0, deltaY });

    /// <summary>Types text into the focused element.</summary>
    public Task TypeAsync(string text) => SendAsync("Input.insertText", new { text });

    /// <summary>Presses Enter in the focused element.</summary>
    public async Task PressEnterAsync()
    {
        await SendAsync("Input.dispatchKeyEvent", new { type = "keyDown", key = "Enter", code = "Enter", windowsVirtualKeyCode = 13, text = "\r" });
        await SendAsync("Input.dispatchKeyEvent", new { type = "keyUp", key = "Enter", code = "Enter", windowsVirtualKeyCode = 13 });
    }

    /// <summary>A PNG screenshot of the viewport.</summary>
    public async Task<byte[]> ScreenshotAsync()
    {
        var r = await SendAsync("Page.captureScreenshot", new { format = "png" });
        return Convert.FromBase64String(r["data"]!.GetValue<string>());
    }

    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        try
        {
            if (_socket.State == WebSocketState.Open)
                await _socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, "done", CancellationToken.None);
        }
        catch (WebSocketException)
        {
        }
        _socket.Dispose();
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
                await _process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(20));
            }
        }
        catch (Exception e) when (e is InvalidOperationException or TimeoutException or System.ComponentModel.Win32Exception)
        {
        }
        _process.Dispose();
        try
        {
            Directory.Delete(_profile, recursive: true);
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }
}
