"""Convert Resemblyzer 0.1.4's `pretrained.pt` into myna/assets/speaker/resemblyzer_ge2e.safetensors.

Usage: pip download --no-deps Resemblyzer==0.1.4 -d /tmp/rz && unzip /tmp/rz/*.whl -d /tmp/rz
       python scripts/convert_resemblyzer.py /tmp/rz/resemblyzer/pretrained.pt

Keeps the encoder weights (LSTM + linear) in float16 (the GE2E similarity scale/bias and the
optimizer state are dropped); the file is about 2.9 MB instead of 17 MB. Resemblyzer is Apache-2.0:
its LICENSE is copied next to the weights as LICENSE-resemblyzer.txt.
"""

from __future__ import annotations

import sys

from safetensors.torch import save_file

from myna.features.ge2e import BUNDLED, read_ge2e_weights


def main(source: str) -> None:
    """Write the bundled safetensors file from `source`."""
    state = {k: v.half().contiguous() for k, v in read_ge2e_weights(source).items()}
    BUNDLED.parent.mkdir(parents=True, exist_ok=True)
    save_file(state, str(BUNDLED), metadata={"source": "Resemblyzer 0.1.4 pretrained.pt (Apache-2.0)",
                                             "converted_by": "scripts/convert_resemblyzer.py"})
    print(BUNDLED, BUNDLED.stat().st_size)


if __name__ == "__main__":
    main(sys.argv[1])
