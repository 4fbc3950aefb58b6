"""A plan's figures, spend moments and invariants on hand-worked problems."""
