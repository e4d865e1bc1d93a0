"""pyipxe: iPXE rebuilt in Python as a userspace network bootloader for Linux."""

__version__ = "0.1.0"
