"""What a bended call runs on: views holding bent weights, the bent-weight cache, versions, per-example
batches, and the programs compiled from traced graphs (private)."""
