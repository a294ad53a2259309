package builder

import (
	"os"
	"runtime/debug"

	"amber/internal/config"
	"amber/internal/store"
)

// syncHeapOverhead is the Go heap a sync holds beyond CACHE_MB's parts
// (blocks fetched and parsed ahead of the writer, the header tree and tx
// counts, the runtime) plus room for the collector to work in. At 256 MiB
// the live heap of a sync at the default CACHE_MB sat within 50 MiB of
// the limit, the collector ran almost without pause and the 5 M
// checkpoint of the scaling run was 11% slower; at 512 MiB it ran as
// fast as without a limit (BenchmarkScaling, A/B, bench/scaling/).
const syncHeapOverhead = 512 << 20

// MemoryLimit is the Go runtime's soft memory limit for a sync at
// CACHE_MB mb (runtime/debug.SetMemoryLimit): what of the split lives on
// the Go heap (the UTXO cache and two batches, one being indexed and one
// committing; in a build without cgo also Pebble's block cache and
// memtables) plus syncHeapOverhead. Without a limit the heap grows to
// twice its live size between collections, and amber build peaked at
// 2 to 2.5 times CACHE_MB (bench/scaling/).
func MemoryLimit(mb int) int64 {
	split := config.SplitCache(mb)
	limit := split.UTXOCache + 2*int64(split.Batch) + syncHeapOverhead
	if !store.PebbleOffHeap {
		limit += split.BlockCache + store.MaxMemTableBytes
	}
	return limit
}

// ApplyMemoryLimit sets MemoryLimit(mb) as the runtime's limit unless the
// operator set GOMEMLIMIT, which the runtime has applied already. It
// returns the limit set (0 for none) and a func that restores the one
// before.
func ApplyMemoryLimit(mb int) (limit int64, restore func()) {
	if os.Getenv("GOMEMLIMIT") != "" {
		return 0, func() {}
	}
	limit = MemoryLimit(mb)
	prev := debug.SetMemoryLimit(limit)
	return limit, func() { debug.SetMemoryLimit(prev) }
}
