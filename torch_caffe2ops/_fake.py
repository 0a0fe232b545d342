"""Python fake kernels for ops whose output sizes depend on tensor values (spec 0.8)."""
