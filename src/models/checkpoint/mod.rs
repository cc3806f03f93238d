//! Reading tensors from checkpoint files (placeholder until the reader lands).
