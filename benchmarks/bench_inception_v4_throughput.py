"""Claim: our Inception-v4 runs as efficiently per MAC as Keras' InceptionV3 on CPU.

The write-up trains Inception-v4 at 299x299 because it "still runs fast
enough on CPU". Inception-v4 does about 2.1x the work of InceptionV3 per
image, so raw images/s must be lower; the claim is that our implementation
wastes nothing on top of that: its throughput per MAC is at least 0.9 of
``keras.applications.InceptionV3`` (a well-tuned reference) measured side by
side::

    ratio = (ips_ours * gmacs_ours) / (ips_v3 * gmacs_v3) >= 0.9

Both models: random weights, 1000 classes, 299x299x3 float32 input, inference
``model(x, training=False)`` inside one ``tf.function`` each (no XLA), the
same batch size. MACs per image are counted over Conv2D/Dense layers with
:func:`imgcls.models.count_macs`. After a warm-up, timings alternate between
the two models (order flipped every repeat: A B, B A, ...), each timing covers
``--batches`` consecutive batches, and the median images/s per model is used
(``ratio_per_mac``). Also recorded: the median of the per-repeat ratios of
adjacent timings and the ratio computed from this process's CPU time, two
views less sensitive to other load on the machine.
Other processes may share the CPU; alternating and the median keep the
comparison fair, and the load average is recorded.

Usage::

    python benchmarks/bench_inception_v4_throughput.py [--quick] [--batch-size 8]
        [--repeats 7] [--batches 3] [--out PATH]

Writes ``benchmarks/results/inception_v4_throughput.json`` (``--quick``, at
75x75 with batch 2, writes only where ``--out`` says).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from _common import load_average, machine_info, result_path, start_benchmark, utc_now, write_result

RESULT = result_path("inception_v4_throughput")
TARGET = 0.9


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="75x75, batch 2, 2 repeats; no file unless --out")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--batches", type=int, default=3, help="batches per timing")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    bench = start_benchmark("inception_v4_throughput", argv)

    import keras
    import numpy as np
    import tensorflow as tf

    from imgcls.models import count_macs, create_model

    size = 75 if args.quick else 299
    batch = 2 if args.quick else args.batch_size
    repeats = 2 if args.quick else args.repeats
    n_batches = 1 if args.quick else args.batches
    out = args.out if (args.out or args.quick) else RESULT

    models = {
        "inception_v4": create_model("inception_v4", 1000, input_shape=(size, size, 3), seed=0),
        "inception_v3": keras.applications.InceptionV3(
            weights=None, input_shape=(size, size, 3), classes=1000
        ),
    }
    macs = {name: count_macs(m) for name, m in models.items()}
    params = {name: int(m.count_params()) for name, m in models.items()}
    x = tf.constant(np.random.default_rng(0).uniform(0, 255, (batch, size, size, 3)).astype("float32"))
    fns = {
        name: tf.function(lambda t, m=m: m(t, training=False), reduce_retracing=True)
        for name, m in models.items()
    }
    for fn in fns.values():  # trace and warm up
        for _ in range(2):
            fn(x).numpy()

    load_before = load_average()
    timings: dict[str, list[float]] = {name: [] for name in fns}
    cpu_timings: dict[str, list[float]] = {name: [] for name in fns}
    order = list(fns)
    for r in range(repeats):
        for name in order if r % 2 == 0 else order[::-1]:
            fn = fns[name]
            start, cpu_start = time.perf_counter(), time.process_time()
            for _ in range(n_batches):
                fn(x).numpy()
            elapsed = time.perf_counter() - start
            cpu_elapsed = time.process_time() - cpu_start
            timings[name].append(n_batches * batch / elapsed)
            cpu_timings[name].append(n_batches * batch / cpu_elapsed)
            print(
                f"repeat {r + 1}/{repeats} {name}: {timings[name][-1]:.2f} images/s "
                f"({cpu_timings[name][-1]:.2f} images per CPU-second)",
                flush=True,
            )
    load_after = load_average()

    ips = {name: statistics.median(v) for name, v in timings.items()}
    gmacs = {name: macs[name] / 1e9 for name in macs}
    mac_ratio = gmacs["inception_v4"] / gmacs["inception_v3"]
    ratio = ips["inception_v4"] / ips["inception_v3"] * mac_ratio
    # Secondary views, less sensitive to other processes on the machine:
    # the median of per-repeat (adjacent, same load) ratios, and the ratio of
    # images per CPU-second of this process.
    paired = [
        a / b * mac_ratio
        for a, b in zip(timings["inception_v4"], timings["inception_v3"], strict=True)
    ]
    cpu_ips = {name: statistics.median(v) for name, v in cpu_timings.items()}
    cpu_ratio = cpu_ips["inception_v4"] / cpu_ips["inception_v3"] * mac_ratio
    result = {
        "claim": "inception_v4 throughput per MAC >= 0.9 x keras.applications.InceptionV3 (CPU inference)",
        "target": TARGET,
        "ratio_per_mac": round(ratio, 4),
        "passed": bool(ratio >= TARGET),
        "raw_ratio_images_per_s": round(ips["inception_v4"] / ips["inception_v3"], 4),
        "ratio_per_mac_paired_median": round(statistics.median(paired), 4),
        "ratio_per_mac_paired_all": [round(v, 4) for v in paired],
        "ratio_per_mac_cpu_time": round(cpu_ratio, 4),
        "quick": bool(args.quick),
        "input_shape": [size, size, 3],
        "batch_size": batch,
        "repeats": repeats,
        "batches_per_timing": n_batches,
        "images_per_s_median": {k: round(v, 3) for k, v in ips.items()},
        "images_per_s_all": {k: [round(v, 3) for v in vs] for k, vs in timings.items()},
        "images_per_cpu_s_median": {k: round(v, 3) for k, v in cpu_ips.items()},
        "images_per_cpu_s_all": {k: [round(v, 3) for v in vs] for k, vs in cpu_timings.items()},
        "gmacs_per_image": {k: round(v, 4) for k, v in gmacs.items()},
        "params_total": params,
        "gmacs_per_s_median": {k: round(ips[k] * gmacs[k], 3) for k in ips},
        "method": "tf.function(model(x, training=False)), no XLA; alternating order, median",
        "load_average_before": load_before,
        "load_average_after": load_after,
        "machine": machine_info(),
        "versions": {"tensorflow": tf.__version__, "keras": keras.__version__, "numpy": np.__version__},
        "created": utc_now(),
    }
    print(json.dumps(result, indent=2))
    if out is not None:
        write_result(result, out, bench)
        print(f"wrote {out}")
    return result


if __name__ == "__main__":
    main()
