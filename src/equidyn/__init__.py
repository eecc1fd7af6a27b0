"""equidyn: equivariant deep learning and learned dynamics in PyTorch.

>>> import equidyn as ed
>>> ed.o3.Irreps("16x0e + 8x1o").dim
40
"""

from equidyn import o3

__version__ = "0.1.0"
__all__ = ["o3", "__version__"]
