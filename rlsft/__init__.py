"""rlsft: SFT and RL algorithms as interchangeable losses over one trajectory batch."""

from rlsft.errors import RLSFTError

__version__ = "0.1.0"
__all__ = ["RLSFTError", "__version__"]
