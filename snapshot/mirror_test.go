package snapshot

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"amber/internal/chain"
	"amber/internal/chainsync"
	"amber/internal/index"
	"amber/internal/store"
	"amber/internal/testenv"
)

// mirrorBuilder is an index published through a mirror, as amber build
// publishes.
type mirrorBuilder struct {
	t      *testing.T
	net    *chain.Network
	raw    [][]byte
	dir    string
	db     *store.DB
	ix     *index.Index
	mirror *store.Mirror
	pub    *Publisher
	bucket *memBucket
}

func (b *mirrorBuilder) open() {
	b.t.Helper()
	var err error
	if b.db, b.ix, err = index.OpenDir(b.dir, 16<<20, b.net, index.Options{}); err != nil {
		b.t.Fatal(err)
	}
	if b.mirror, err = OpenMirror(b.db, nil); err != nil {
		b.t.Fatal(err)
	}
	b.pub = &Publisher{Bucket: b.bucket, Mirror: b.mirror}
}

// close closes the DB, first bringing the mirror up to it when update is
// set, as the builder does at a clean shutdown.
func (b *mirrorBuilder) close(update bool) {
	b.t.Helper()
	if update {
		if _, err := b.mirror.Update(context.Background(), b.db); err != nil {
			b.t.Fatal(err)
		}
	}
	if err := b.mirror.Close(); err != nil {
		b.t.Fatal(err)
	}
	if err := b.db.Close(); err != nil {
		b.t.Fatal(err)
	}
}

func (b *mirrorBuilder) syncTo(height int) {
	b.t.Helper()
	src, err := chainsync.NewMemorySource(b.raw[:height+1])
	if err != nil {
		b.t.Fatal(err)
	}
	if _, err := chainsync.New(b.ix, src, chainsync.Options{}).SyncToTip(context.Background()); err != nil {
		b.t.Fatal(err)
	}
}

// publish publishes, restores what it published into a new directory and
// checks that it equals the index; it returns the share of the
// snapshot's bytes the publish uploaded.
func (b *mirrorBuilder) publish() float64 {
	b.t.Helper()
	ctx := context.Background()
	b.bucket.resetUploads()
	m, err := PublishDB(ctx, b.db, b.net, b.pub, nil)
	if err != nil {
		b.t.Fatal(err)
	}
	var uploaded int64
	for _, name := range b.bucket.resetUploads() {
		for _, f := range m.Files {
			// The bucket sees keys under the schema's prefix.
			if strings.HasSuffix(name, "/"+f.Key) {
				uploaded += f.Size
				break
			}
		}
	}
	dest := filepath.Join(b.t.TempDir(), "restored")
	if _, err := (&Restorer{Bucket: b.bucket}).Restore(ctx, dest, ExpectNetwork(b.net)); err != nil {
		b.t.Fatal(err)
	}
	live := filepath.Join(b.t.TempDir(), "live")
	if err := b.db.Checkpoint(live); err != nil {
		b.t.Fatal(err)
	}
	if got, want := testenv.DigestDir(b.t, dest), testenv.DigestDir(b.t, live); got != want {
		b.t.Fatalf("snapshot at %d restores to digest %s, the index is %s", m.Height, got, want)
	}
	b.t.Logf("publish at %d: uploaded %d of %d bytes", m.Height, uploaded, m.Size())
	return float64(uploaded) / float64(m.Size())
}

// TestMirrorPublish publishes a growing index through its mirror: every
// snapshot restores to exactly the index, publishes after the first
// upload a part of it, and so does the first publish after a clean
// restart or after a builder resumed from a snapshot; a mirror that
// missed writes is rebuilt.
func TestMirrorPublish(t *testing.T) {
	net, raw := tinyChain(t)
	b := &mirrorBuilder{t: t, net: net, raw: raw, dir: filepath.Join(t.TempDir(), "db"), bucket: newMem()}
	b.open()
	b.syncTo(150)
	if share := b.publish(); share != 1 {
		t.Fatalf("first publish uploaded %.2f of the snapshot, want all of it", share)
	}
	incremental := func(what string) {
		t.Helper()
		// On this tiny index each layer table's fixed kilobyte weighs a
		// lot; store's TestMirrorFollowsDB measures the share at size.
		if share := b.publish(); share >= 0.9 {
			t.Errorf("%s: publish uploaded %.2f of the snapshot", what, share)
		}
	}
	for h := 160; h <= 200; h += 10 {
		b.syncTo(h)
		incremental("growing")
	}

	// A clean restart carries on.
	b.close(true)
	b.open()
	b.syncTo(210)
	incremental("after a restart")

	// Writes the mirror never saw: it is written whole, and still right.
	b.close(false)
	b.open()
	b.syncTo(220)
	b.close(false)
	b.open()
	if share := b.publish(); share < 0.95 {
		t.Errorf("a mirror that missed writes uploaded only %.2f of the snapshot", share)
	}
	b.syncTo(230)
	incremental("after a rebuild")
	b.close(true)

	// A builder starting from the snapshot on an empty disk: its first
	// publish builds on the snapshot it restored.
	fresh := &mirrorBuilder{t: t, net: net, raw: raw, dir: filepath.Join(t.TempDir(), "db"), bucket: b.bucket}
	if _, err := (&Restorer{Bucket: b.bucket}).Restore(context.Background(), fresh.dir, ExpectNetwork(net)); err != nil {
		t.Fatal(err)
	}
	if err := SeedMirror(fresh.dir); err != nil {
		t.Fatal(err)
	}
	fresh.open()
	fresh.syncTo(240)
	if share := fresh.publish(); share >= 0.9 {
		t.Errorf("first publish after a restore uploaded %.2f of the snapshot", share)
	}
	fresh.close(false)
}
