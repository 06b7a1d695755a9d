"""Tools the assistant calls: the safe SymPy calculator (issue #4; not implemented yet)."""
