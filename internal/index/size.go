package index

import (
	"fmt"

	"amber/internal/store"
)

// PrefixSize is what one kind of row costs in a store: how many rows, their
// raw key and value bytes, and the SST bytes Pebble estimates they take on
// disk (store.DB.RangeSize).
type PrefixSize struct {
	// Name is the row kind: "headers", "tx counts", "txids", "tx lookup",
	// "history", "utxo", "outpoint lookup", "spend index", "undo" or
	// "metadata".
	Name string
	// Prefix is the rows' one-byte key prefix.
	Prefix byte
	// Rows, KeyBytes and ValueBytes count the live rows and their raw
	// (uncompressed) key and value bytes.
	Rows, KeyBytes, ValueBytes int64
	// SSTBytes is the estimated bytes of SST holding the rows.
	SSTBytes int64
}

// prefixNames names every key prefix of the schema, in key order.
var prefixNames = []struct {
	prefix byte
	name   string
}{
	{prefixTxCount, "tx counts"},
	{prefixHeader, "headers"},
	{prefixTxLook, "tx lookup"},
	{prefixMeta, "metadata"},
	{prefixOutLook, "outpoint lookup"},
	{prefixSpend, "spend index"},
	{prefixTxid, "txids"},
	{prefixUTXO, "utxo"},
	{prefixHistory, "history"},
	{prefixUndo, "undo"},
}

// PrefixSizes returns the size of each kind of row in db, in key order. It
// reads every row, so it is for benchmarks and tools; flush (better,
// compact) first, since rows still in memtables take no SST bytes yet.
func PrefixSizes(db *store.DB) ([]PrefixSize, error) {
	out := make([]PrefixSize, 0, len(prefixNames))
	for _, p := range prefixNames {
		ps := PrefixSize{Name: p.name, Prefix: p.prefix}
		err := db.Scan([]byte{p.prefix}, func(k, v []byte) error {
			ps.Rows++
			ps.KeyBytes += int64(len(k))
			ps.ValueBytes += int64(len(v))
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("index: size of %s rows: %w", p.name, err)
		}
		// Every key is longer than its prefix, so no key equals the
		// inclusive end bound.
		n, err := db.RangeSize([]byte{p.prefix}, []byte{p.prefix + 1})
		if err != nil {
			return nil, fmt.Errorf("index: size of %s rows: %w", p.name, err)
		}
		ps.SSTBytes = int64(n)
		out = append(out, ps)
	}
	return out, nil
}
