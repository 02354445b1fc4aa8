"""Numerical building blocks of the families: numba/numpy kernels, no feature declarations."""
