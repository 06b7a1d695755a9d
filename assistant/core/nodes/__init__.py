"""The graph's nodes, one module per route, over what they share (base)."""
