package store

import (
	"encoding/binary"
	"math/rand/v2"
	"testing"
)

// benchKey writes a 16-byte key for i: a pseudo-random 8-byte prefix (like
// a hashX) then i, so keys arrive out of order as index rows do.
func benchKey(dst []byte, i uint64) []byte {
	dst = binary.BigEndian.AppendUint64(dst[:0], i*0x9e3779b97f4a7c15)
	return binary.BigEndian.AppendUint64(dst, i)
}

// BenchmarkBatchWrite measures bulk writes of 16-byte keys with 8-byte
// values in batches committed at a 4 MiB budget; one op is one key. Run
// with -benchtime=1000000x for the 1M-key case.
func BenchmarkBatchWrite(b *testing.B) {
	for _, tc := range []struct {
		name string
		opts Options
	}{
		{"wal", Options{}},
		{"nowal", Options{DisableWAL: true}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			db := openT(b, b.TempDir(), tc.opts)
			const budget = 4 << 20
			key := make([]byte, 0, 16)
			val := make([]byte, 8)
			b.SetBytes(16 + 8)
			b.ReportAllocs()
			batch := db.NewBatch()
			for i := range uint64(b.N) {
				binary.BigEndian.PutUint64(val, i)
				if err := batch.Set(benchKey(key, i), val); err != nil {
					b.Fatal(err)
				}
				if batch.Size() >= budget {
					if err := batch.Commit(false); err != nil {
						b.Fatal(err)
					}
					batch.Close()
					batch = db.NewBatch()
				}
			}
			if err := batch.Commit(false); err != nil {
				b.Fatal(err)
			}
			batch.Close()
			if err := db.Flush(); err != nil {
				b.Fatal(err)
			}
		})
	}
}

// BenchmarkPrefixScan measures Scan over one of 1000 prefixes of 100 keys
// each (11-byte prefixes like a hashX, 5-byte suffixes like a tx_num), on
// a compacted DB; one op is one prefix scan.
func BenchmarkPrefixScan(b *testing.B) {
	const prefixes, perPrefix = 1000, 100
	db := openT(b, b.TempDir(), Options{})
	prefix := func(p int) []byte {
		k := binary.BigEndian.AppendUint64(nil, uint64(p)*0x9e3779b97f4a7c15)
		return append(k, byte(p), byte(p>>8), 0x5a)
	}
	batch := db.NewBatch()
	for p := range prefixes {
		for i := range perPrefix {
			k := append(prefix(p), 0, 0, byte(i>>16), byte(i>>8), byte(i))
			if err := batch.Set(k, nil); err != nil {
				b.Fatal(err)
			}
		}
	}
	if err := batch.Commit(false); err != nil {
		b.Fatal(err)
	}
	batch.Close()
	if err := db.Compact(b.Context()); err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	b.ReportAllocs()
	for b.Loop() {
		n := 0
		err := db.Scan(prefix(rng.IntN(prefixes)), func(k, v []byte) error {
			n++
			return nil
		})
		if err != nil || n != perPrefix {
			b.Fatalf("scan: %d keys, %v", n, err)
		}
	}
	b.ReportMetric(perPrefix, "keys/op")
}
