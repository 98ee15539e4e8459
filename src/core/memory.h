// The process's heap policy for tensor work: freed blocks are kept for reuse.
//
// glibc serves allocations above M_MMAP_THRESHOLD (128 KiB at start, raised by glibc itself up to
// 32 MiB as mapped blocks are freed) with a fresh mmap and returns them to the kernel on free.
// Tensor code allocates and frees blocks of megabytes at every layer (activations, casts to
// bfloat16), so many of them were mapped, zero-filled by the kernel page by page on first touch,
// and unmapped again: on a 2-core AMX machine the kernel's page-fault and page-clearing work took
// 23 % of `predict behavior --precision bfloat16` (7.7 % with this policy), which ran 1.48x
// faster per image with it (results/BENCHMARKS.md, issue 18).
#pragma once

#include <cstddef>

namespace cliphba {

struct HeapPolicy {
  std::size_t mmap_threshold = 0;  // bytes; blocks below come from the reusable heap
  std::size_t trim_threshold = 0;  // bytes of free memory kept at the heap's top before returning
  bool applied = false;            // false: left at glibc's defaults (opt-out, or not glibc)
};

// Blocks up to 32 MiB (glibc's largest allowed mmap threshold on 64-bit) come from the heap;
// larger ones are still mapped and unmapped. Up to 1 GiB of free memory at the top of each heap
// arena is kept instead of being returned (M_TRIM_THRESHOLD; freed holes below an arena's top
// are never returned, with or without this policy). Call once, early in main(), before tensor
// work. CLIPHBA_GLIBC_MALLOC_DEFAULTS=1 (any value but "" and "0") leaves glibc's defaults, for a
// memory-tight node or a before/after measurement. Returns what was set (applied: at least one
// of the two). Never throws.
HeapPolicy ReuseFreedMemory();

}  // namespace cliphba
