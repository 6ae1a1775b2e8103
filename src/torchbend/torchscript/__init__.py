"""TorchScript files: their graphs recorded and rewritten with bends, and their method backend (private)."""
