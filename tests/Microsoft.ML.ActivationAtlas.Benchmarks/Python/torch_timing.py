"""Shared by the PyTorch timing scripts: one warm-up call, then the mean wall time of `iterations` calls in ms."""
import time


def mean_ms(step, iterations):
    step()
    times = []
    for _ in range(iterations):
        t = time.perf_counter()
        step()
        times.append((time.perf_counter() - t) * 1000)
    return sum(times) / len(times)
