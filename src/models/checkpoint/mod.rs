//! Reading tensors from checkpoint files (the reader lands in the next commit).

#[allow(dead_code)] // used by the PyTorch readers that follow
mod pickle;
