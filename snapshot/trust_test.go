package snapshot

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
)

// TestReplayedLatestRefused: someone with write access to the bucket puts
// back an older (validly signed) LATEST. The restorer notices the newer
// trusted manifest, says that it ignores LATEST, and restores the newest;
// when the newer manifest is not trusted, LATEST's snapshot is used.
func TestReplayedLatestRefused(t *testing.T) {
	ctx := context.Background()
	pub, priv, _ := ed25519.GenerateKey(nil)
	b := newMem()
	d := newTestDB(t)
	ms := publishN(t, d, &Publisher{Bucket: b, SigningKey: priv}, 5, 9)
	newestKeys := d.keys
	b.put(LatestKey, []byte(ms[0].Key())) // the replay

	var log bytes.Buffer
	r := &Restorer{Bucket: b, TrustedKeys: []ed25519.PublicKey{pub}, Logger: slog.New(slog.NewTextHandler(&log, nil))}
	dest := filepath.Join(t.TempDir(), "r")
	m, err := r.Restore(ctx, dest, expect)
	if err != nil {
		t.Fatal(err)
	}
	if m.Height != 9 {
		t.Fatalf("restored height %d from a replayed LATEST, want the newest, 9", m.Height)
	}
	checkRestored(t, dest, newestKeys)
	if !strings.Contains(log.String(), "ignoring LATEST as replayed") || !strings.Contains(log.String(), ms[0].Key()) {
		t.Errorf("no clear log line about the replayed LATEST:\n%s", log.String())
	}

	// A newer manifest that is not signed by a trusted key does not win.
	_, otherPriv, _ := ed25519.GenerateKey(nil)
	forged := *ms[1]
	forged.Height, forged.Block = 12, blockHash(12)
	if err := forged.Sign(otherPriv); err != nil {
		t.Fatal(err)
	}
	body, _ := forged.Marshal()
	b.put(forged.Key(), body)
	b.put(LatestKey, []byte(ms[1].Key()))
	log.Reset()
	m, err = r.Restore(ctx, filepath.Join(t.TempDir(), "r"), expect)
	if err != nil {
		t.Fatal(err)
	}
	if m.Height != 9 || !strings.Contains(log.String(), "not signed by a trusted key") {
		t.Fatalf("restored %d with a forged newer manifest in the bucket, want 9; log:\n%s", m.Height, log.String())
	}
}

// TestUnsignedRefusedWhenKeysRequired: with trusted keys configured and
// only unsigned manifests in the bucket, nothing is restored and the
// error says why.
func TestUnsignedRefusedWhenKeysRequired(t *testing.T) {
	pub, _, _ := ed25519.GenerateKey(nil)
	b := newMem()
	publishN(t, newTestDB(t), &Publisher{Bucket: b}, 3)
	r := &Restorer{Bucket: b, TrustedKeys: []ed25519.PublicKey{pub}}
	_, err := r.Restore(context.Background(), filepath.Join(t.TempDir(), "r"), expect)
	if err == nil || !strings.Contains(err.Error(), "unsigned") || !strings.Contains(err.Error(), "no valid manifest") {
		t.Fatalf("restore of an unsigned snapshot with keys required: %v", err)
	}
}
