// The process's heap policy for tensor work: freed blocks are kept for reuse.
//
// glibc serves every allocation above M_MMAP_THRESHOLD (128 KiB at start) with a fresh mmap and
// returns it to the kernel on free. Tensor code allocates and frees blocks of megabytes at every
// layer (activations, casts to bfloat16), so without this each one is mapped, zero-filled by the
// kernel page by page on first touch, and unmapped again: measured on a 2-core AMX machine, the
// kernel's page-fault and page-clearing work took ~25% of `predict behavior --precision bfloat16`
// and the ViT-B/32 forward ran 1.4x slower per image than with the policy below
// (results/BENCHMARKS.md, issue 18).
#pragma once

#include <cstddef>

namespace cliphba {

struct HeapPolicy {
  std::size_t mmap_threshold = 0;  // bytes; blocks below come from the reusable heap
  std::size_t trim_threshold = 0;  // bytes of free memory kept at the heap's top before returning
  bool applied = false;            // false: left at glibc's defaults (opt-out, or not glibc)
};

// Blocks up to 32 MiB (glibc's largest allowed mmap threshold on 64-bit) come from the heap and
// up to 1 GiB of freed memory is kept for reuse instead of being returned to the kernel. Call once,
// early in main(), before tensor work. The environment variable CLIPHBA_GLIBC_MALLOC_DEFAULTS=1
// leaves glibc's defaults (for a memory-tight node or a before/after measurement). Returns what
// was set. Never throws.
HeapPolicy ReuseFreedMemory();

}  // namespace cliphba
