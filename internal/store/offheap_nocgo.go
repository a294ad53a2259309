//go:build !cgo

package store

// PebbleOffHeap reports whether Pebble allocates its block cache and
// memtables with C malloc. Without cgo (the container image's static
// build) they are on the Go heap, and a Go memory limit must count them.
const PebbleOffHeap = false
