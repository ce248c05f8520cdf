"""The I/O edge: the storage port and its adapters, the SIGNL4 and Halo clients."""
