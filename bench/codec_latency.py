"""What ``codec.Resampler`` costs a call: the delay it adds and the CPU time per frame.

The delay is where a click fed at the start comes out (the peak of the output), in ms,
for 16 -> 8 kHz (the bridge's uplink from a 16 kHz stream) and 8 -> 16 kHz; the CPU time
is the mean of ``process`` over ``--seconds`` of 20 ms frames.

    python bench/codec_latency.py [--seconds 60]
"""

import argparse
import time

import numpy as np

from gateway.media import codec


def delay_ms(src: int, dst: int) -> float:
    click = np.zeros(src // 5, dtype="<i2")
    click[0] = 20000
    out = np.frombuffer(codec.Resampler(src, dst).process(click.tobytes()), dtype="<i2")
    return float(np.argmax(np.abs(out.astype(np.int32)))) * 1000 / dst


def frame_us(src: int, dst: int, seconds: float) -> float:
    audio = codec.tone(seconds, 700, rate=src)
    frame = codec.l16_frame_bytes(src)
    resampler = codec.Resampler(src, dst)
    started = time.perf_counter()
    for at in range(0, len(audio), frame):
        resampler.process(audio[at:at + frame])
    return (time.perf_counter() - started) / (len(audio) // frame) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args()
    for src, dst in ((16000, 8000), (8000, 16000)):
        print(f"{src} -> {dst} Hz: delay {delay_ms(src, dst):.1f} ms, "
              f"{frame_us(src, dst, args.seconds):.1f} us per 20 ms frame")


if __name__ == "__main__":
    main()
