//go:build cgo

package store

// PebbleOffHeap reports whether Pebble allocates its block cache and
// memtables with C malloc, as it does in builds with cgo: outside the Go
// heap, so a Go memory limit must leave them out.
const PebbleOffHeap = true
