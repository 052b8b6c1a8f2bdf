"""Reserved row of the layer map (docs/ARCHITECTURE.md); built by a later issue."""
