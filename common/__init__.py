"""The floor every particle-bench package stands on: shared geometry, seeded generators,
array interop and the plug-in registry. It imports nothing from samplers, datasets, metrics
or benchmarks, so each of those can import it."""
