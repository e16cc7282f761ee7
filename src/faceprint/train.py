"""``python -m faceprint.train ARGS`` = ``faceprint train ARGS``: the entry point torchrun starts on each process.

    torchrun --nnodes 2 --nproc_per_node 4 --rdzv_backend c10d --rdzv_endpoint HOST:29500 \\
        -m faceprint.train DATA --config cfg.toml --out runs/big
"""

from __future__ import annotations

import sys

from faceprint.cli.main import main

if __name__ == "__main__":
    main(["train", *sys.argv[1:]])
