"""Layer 2: what the code means (which values are modules, their mode and grad state on
each path, which regions evaluate and which train). No judgement lives here: rules do that."""
