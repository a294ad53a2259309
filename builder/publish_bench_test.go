package builder_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"amber/internal/chain"
	"amber/internal/chainsync"
	"amber/internal/index"
	"amber/internal/store"
	"amber/internal/testenv/chaingen"
	"amber/snapshot"
	"amber/snapshot/objstore"
)

// publishStep is one publish of benchPublish.
type publishStep struct {
	height           int
	snapshot, upload int64 // bytes in the snapshot, bytes it uploaded
	compacted        int64 // bytes of the same DB fully compacted
	rebuilt          bool  // the mirror was written whole
}

// growPublish indexes the first half of c's blocks, publishes, then
// indexes 1% more blocks at a time (at least one), committing near the
// tip block by block as a following builder does, and publishes after
// each step into bucket, until the whole chain is indexed. It returns
// one publishStep per publish. Blocks come from memory: what is measured
// is the publish, not the daemon.
func growPublish(tb testing.TB, c *chaingen.Chain, bucket objstore.Bucket) []publishStep {
	tb.Helper()
	ctx := context.Background()
	net, _ := chain.Lookup("Bitcoin", "regtest")
	var gbuf bytes.Buffer
	if err := net.Params.GenesisBlock.Serialize(&gbuf); err != nil {
		tb.Fatal(err)
	}
	raw := append([][]byte{gbuf.Bytes()}, c.Blocks...)
	dir := tb.TempDir()
	db, ix, err := index.OpenDir(filepath.Join(dir, "db"), 256<<20, net, index.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	// As amber build publishes: through the mirror.
	mirror, err := snapshot.OpenMirror(db, nil)
	if err != nil {
		tb.Fatal(err)
	}
	defer mirror.Close()
	pub := &snapshot.Publisher{Bucket: bucket, Mirror: mirror}
	uploaded := map[string]bool{}
	var steps []publishStep
	for h := len(raw) / 2; ; h = min(len(raw), h+max(1, h/100)) {
		src, err := chainsync.NewMemorySource(raw[:h])
		if err != nil {
			tb.Fatal(err)
		}
		if _, err := chainsync.New(ix, src, chainsync.Options{}).SyncToTip(ctx); err != nil {
			tb.Fatal(err)
		}
		first := len(steps) == 0
		m, err := snapshot.PublishDB(ctx, db, net, pub, nil)
		if err != nil {
			tb.Fatal(err)
		}
		st := publishStep{height: h - 1, snapshot: m.Size()}
		for _, f := range m.Files {
			if !uploaded[f.Key] {
				uploaded[f.Key] = true
				st.upload += f.Size
			}
		}
		// Every table new after the first publish means the mirror was
		// written whole.
		st.rebuilt = !first && st.upload >= st.snapshot
		st.compacted = compactedSize(tb, db, filepath.Join(dir, "compacted"))
		steps = append(steps, st)
		if h == len(raw) {
			return steps
		}
	}
}

// compactedSize checkpoints db into dir, compacts the copy fully and
// returns its size, so the DB itself is left as the publisher left it.
func compactedSize(tb testing.TB, db *store.DB, dir string) int64 {
	tb.Helper()
	defer os.RemoveAll(dir)
	if err := db.Checkpoint(dir); err != nil {
		tb.Fatal(err)
	}
	cp, err := store.Open(dir, store.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	if err := cp.Compact(context.Background()); err != nil {
		tb.Fatal(err)
	}
	if err := cp.Close(); err != nil {
		tb.Fatal(err)
	}
	files, err := store.ListFiles(dir)
	if err != nil {
		tb.Fatal(err)
	}
	var n int64
	for _, f := range files {
		n += f.Size
	}
	return n
}
