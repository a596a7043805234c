"""``python -m unet_helpers ...`` (and ``torchrun -m unet_helpers train ...``): see ``cli.py``."""
from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
