package reliability

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"amber/internal/chain"
	"amber/internal/index"
	"amber/internal/store"
	"amber/internal/testenv"
	"amber/internal/testenv/chaingen"
	"amber/snapshot"
	"amber/snapshot/objstore"
)

// TestRollingSchemaUpgrade follows infra/RUNBOOK.md, "Upgrading the index
// schema: a rolling upgrade", step by step with two releases on one
// bucket: this one (schema N) and the next, built with the
// amber_nextschema tag (schema N+1). Blocks arrive throughout. It checks
// what an operator would see: which part of the bucket each builder
// publishes to, that no retention pass (a builder's or amber snapshot gc)
// breaks a snapshot of the other schema, the log lines and errors the
// runbook promises, and that every node, whatever its release or disk,
// ends at the daemon's tip with the same answers.
func TestRollingSchemaUpgrade(t *testing.T) {
	if testing.Short() {
		t.Skip("runs btcd, MinIO and two amber releases")
	}
	began := time.Now()
	oldBin, newBin := amberBin, buildNextSchema(t)
	const oldSchema, newSchema = uint32(index.SchemaVersion), uint32(index.SchemaVersion + 1)
	height := 120
	r := newRig(t, chaingen.Tiny, height)
	u := &upgrade{t: t, r: r, objects: r.objects(), seen: map[uint32]map[string]bool{oldSchema: {}, newSchema: {}}}
	u.settled = settledScript(t, r.chain, height)

	// Both releases sign with one key, as one deployment would.
	keyFile := filepath.Join(t.TempDir(), "signing.key")
	out := output(t, oldBin, []string{"snapshot", "keygen", keyFile})
	pub := regexp.MustCompile(`SNAPSHOT_TRUSTED_KEYS on servers\): ([0-9a-f]{64})`).FindStringSubmatch(out)
	if pub == nil {
		t.Fatalf("amber snapshot keygen printed no public key:\n%s", out)
	}
	snap := append(r.snapEnv(false), "SNAPSHOT_GC_GRACE=1s")
	builderEnv := func(dir string) []string {
		return append(append(baseEnv(r.btcd.URL(), dir), snap...), "DAEMON_POLL_INTERVAL=100ms",
			"SNAPSHOT_INTERVAL=1 blocks", "SNAPSHOT_SIGNING_KEY_FILE="+keyFile, "CACHE_MB=16")
	}
	nodeEnv := func(dir, addr string) []string {
		return append(append(serveEnv(r.btcd.URL(), dir, addr), snap...), "SNAPSHOT_TRUSTED_KEYS="+pub[1])
	}
	snapEnv := append([]string{"NET=regtest"}, snap...)
	mine := func(to int, builders ...uint32) {
		t.Helper()
		r.chain.Submit(t, r.btcd, to)
		height = to
		for _, s := range builders {
			u.waitLatest(s, height)
		}
		u.intact(oldSchema)
		u.intact(newSchema)
	}

	// Before the upgrade: this release's builder publishes under its
	// schema, and a node bootstraps from it.
	oldBuild := startBin(t, oldBin, []string{"build"}, builderEnv(t.TempDir())...)
	u.waitLatest(oldSchema, height)
	oldDir, oldAddr := t.TempDir(), testenv.FreeAddr(t)
	oldNode := startBin(t, oldBin, []string{"serve"}, nodeEnv(oldDir, oldAddr)...)
	oldNode.waitLog("restored snapshot", time.Minute)
	waitHeight(t, oldNode, oldAddr, height, time.Minute)
	u.servesCorrectly("old node", oldAddr, height)
	u.layout(oldSchema)

	// Step 3 too early: a node of the next release on an index of this
	// one finds no snapshot of its schema; it keeps the index and stops
	// with "schema version mismatch".
	early := t.TempDir()
	output(t, oldBin, []string{"snapshot", "pull"}, append(snapEnv, "DB_DIRECTORY="+early)...)
	p := startBin(t, newBin, []string{"serve"}, nodeEnv(early, testenv.FreeAddr(t))...)
	stop := regexp.MustCompile(fmt.Sprintf(`amber serve: index: schema version mismatch: .*/%s: snapshot: no valid manifest`,
		strings.TrimSuffix(snapshot.SchemaPrefix(newSchema), "/")))
	if err := p.wait(time.Minute); err == nil || !stop.MatchString(p.log.String()) || strings.Contains(p.log.String(), "syncing from genesis") {
		t.Fatalf("next release on an old index with no snapshot of its schema: exit %v, want a stop with \"schema version mismatch\" naming its schema's part, and no sync:\n%s", err, tail(p.log.String(), 10))
	}
	if tip := tipOf(t, early); int(tip.Height) != height {
		t.Errorf("the refused index moved: tip %d, want %d", tip.Height, height)
	}
	noneBeside(t, early)

	// Step 1: the next release's builder, with its own DB directory,
	// finds no snapshot of its schema and syncs from genesis, while this
	// release's builder goes on publishing and its node serving.
	newBuild := startBin(t, newBin, []string{"build"}, builderEnv(t.TempDir())...)
	for _, to := range []int{130, 140, 150} {
		mine(to, oldSchema)
		waitHeight(t, oldNode, oldAddr, height, time.Minute)
		u.servesCorrectly("old node during the new builder's sync", oldAddr, height)
	}
	newBuild.waitLog("no snapshot to resume from; syncing from genesis", time.Minute)
	u.waitLatest(newSchema, height)
	u.layout(oldSchema, newSchema)

	// Each release's amber snapshot gc, twice a grace period apart, while
	// both builders publish and retain: each schema's snapshots stay
	// whole.
	for range 2 {
		for _, bin := range []string{oldBin, newBin} {
			output(t, bin, []string{"snapshot", "gc"}, snapEnv...)
		}
		time.Sleep(1100 * time.Millisecond)
	}
	mine(160, oldSchema, newSchema)
	waitHeight(t, oldNode, oldAddr, height, time.Minute)

	// Step 2: the next release lists a signed snapshot at the tip, and it
	// verifies; this release still lists only its own.
	list := output(t, newBin, []string{"snapshot", "list"}, snapEnv...)
	if !regexp.MustCompile(fmt.Sprintf(`(?m)^%d\s.*\strue\s`, height)).MatchString(list) {
		t.Errorf("next release's snapshot list lacks a signed snapshot at %d:\n%s", height, list)
	}
	if out := output(t, newBin, []string{"snapshot", "verify", "latest"}, snapEnv...); !strings.Contains(out, "every sha256 matches") {
		t.Errorf("amber snapshot verify latest: %s", out)
	}
	for _, c := range []struct {
		bin    string
		schema uint32
	}{{oldBin, oldSchema}, {newBin, newSchema}} {
		var heights []int64
		for _, m := range u.manifests(c.schema) {
			heights = append(heights, m.Height)
		}
		if got := listedHeights(output(t, c.bin, []string{"snapshot", "list"}, snapEnv...)); !slices.Equal(got, heights) {
			t.Errorf("schema %d release lists heights %v; its part of the bucket holds %v", c.schema, got, heights)
		}
	}

	// Step 3: a node of the next release on an empty disk restores the
	// new snapshot and answers as the old node does.
	newAddr := testenv.FreeAddr(t)
	newNode := startBin(t, newBin, []string{"serve"}, nodeEnv(t.TempDir(), newAddr)...)
	newNode.waitLog("restored snapshot", time.Minute)
	waitHeight(t, newNode, newAddr, height, time.Minute)
	qs := querySet(t, r)
	sameAnswers(t, "next release, empty disk", newAddr, oldAddr, qs)

	// Step 3, the old node rolled: it keeps its disk, the new snapshot is
	// restored beside its index (killed right then, the old index is still
	// whole and the restart redoes the replacement), swapped in, and the
	// node serves from the same address.
	if err := oldNode.stop(); err != nil {
		t.Fatalf("stop the old node: %v", err)
	}
	p = startBin(t, newBin, []string{"serve"}, append(nodeEnv(oldDir, oldAddr), "AMBER_TEST_KILL_AT=restored")...)
	if err := p.wait(time.Minute); err == nil || !strings.Contains(p.log.String(), "local index is of another schema; replacing it with a snapshot") {
		t.Errorf("rolled node, killed after the restore: exit %v; want a kill after it said it replaces its index:\n%s", err, tail(p.log.String(), 10))
	}
	if err := openIndex(oldDir + ".new"); !errors.Is(err, index.ErrSchema) || !strings.Contains(err.Error(), fmt.Sprintf("has schema %d", newSchema)) {
		t.Errorf("beside the old index after a kill: %v; want an index of schema %d", err, newSchema)
	}
	if tip := tipOf(t, oldDir); int(tip.Height) != height {
		t.Errorf("old index after a kill before the swap: tip %d, want %d", tip.Height, height)
	}
	rolled := startBin(t, newBin, []string{"serve"}, nodeEnv(oldDir, oldAddr)...)
	rolled.waitLog("local index replaced by snapshot", time.Minute)
	waitHeight(t, rolled, oldAddr, height, time.Minute)
	noneBeside(t, oldDir)
	sameAnswers(t, "rolled node", oldAddr, newAddr, qs)

	// Step 4: no server runs the old release; its builder stops cleanly,
	// and its snapshots stay for a rollback: a node of the old release on
	// an empty disk restores the old schema.
	if err := oldBuild.stop(); err != nil {
		t.Fatalf("stop the old builder: %v", err)
	}
	lastOld := u.latest(oldSchema)
	backAddr := testenv.FreeAddr(t)
	back := startBin(t, oldBin, []string{"serve"}, nodeEnv(t.TempDir(), backAddr)...)
	back.waitLog("restored snapshot", time.Minute)
	if !strings.Contains(back.log.String(), "snapshot="+lastOld.Key()) {
		t.Errorf("rollback node did not restore the old schema's newest snapshot %s:\n%s", lastOld.Key(), tail(back.log.String(), 10))
	}
	waitHeight(t, back, backAddr, height, time.Minute)

	// More blocks: every node and the new builder reach the daemon's tip,
	// with the same answers.
	mine(170, newSchema)
	mine(180, newSchema)
	nodes := map[string]*proc{newAddr: newNode, oldAddr: rolled, backAddr: back}
	for addr, p := range nodes {
		waitHeight(t, p, addr, height, time.Minute)
		u.servesCorrectly("after the upgrade", addr, height)
	}
	qs = querySet(t, r)
	sameAnswers(t, "rolled node at the end", oldAddr, newAddr, qs)
	sameAnswers(t, "rollback node at the end", backAddr, newAddr, qs)

	// Once both builders are done, each release's gc leaves the other
	// schema's part of the bucket exactly as it was.
	if err := newBuild.stop(); err != nil {
		t.Fatalf("stop the new builder: %v", err)
	}
	for _, c := range []struct {
		bin        string
		other, own uint32
	}{{oldBin, newSchema, oldSchema}, {newBin, oldSchema, newSchema}} {
		before := u.names(c.other)
		for range 2 {
			output(t, c.bin, []string{"snapshot", "gc"}, snapEnv...)
			time.Sleep(1100 * time.Millisecond)
		}
		if after := u.names(c.other); !slices.Equal(before, after) {
			t.Errorf("schema %d gc changed schema %d's objects: %d before, %d after", c.own, c.other, len(before), len(after))
		}
	}
	u.intact(oldSchema)
	u.intact(newSchema)
	u.layout(oldSchema, newSchema)
	// Retention deleted data files in each part, so the checks above
	// were not idle.
	for _, s := range []uint32{oldSchema, newSchema} {
		now := u.names(s)
		gone := 0
		for name := range u.seen[s] {
			if !slices.Contains(now, name) {
				gone++
			}
		}
		if gone == 0 {
			t.Errorf("schema %d: retention deleted none of the %d data files seen", s, len(u.seen[s]))
		}
		t.Logf("schema %d: %d data files seen, %d deleted by its own retention, %d objects left", s, len(u.seen[s]), gone, len(now))
	}
	t.Logf("rolling upgrade from schema %d to %d took %v", oldSchema, newSchema, time.Since(began).Round(time.Millisecond))
}

// buildNextSchema builds the amber of the next index schema.
func buildNextSchema(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "amber-next")
	if out, err := exec.Command("go", "build", "-tags", "amber_nextschema", "-o", bin, "amber/cmd/amber").CombinedOutput(); err != nil {
		t.Fatalf("build amber with -tags amber_nextschema: %v\n%s", err, out)
	}
	return bin
}

// output runs a one-shot amber command and returns what it printed on
// stdout, failing the test if it fails.
func output(t *testing.T, bin string, args []string, env ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("amber %s: %v\n%s", strings.Join(args, " "), err, tail(stderr.String(), 20))
	}
	return string(out)
}

// listedHeights are the heights in amber snapshot list's table.
func listedHeights(list string) []int64 {
	var hs []int64
	for _, line := range strings.Split(list, "\n")[1:] {
		var h int64
		if _, err := fmt.Sscan(line, &h); err == nil {
			hs = append(hs, h)
		}
	}
	return hs
}

// openIndex opens the index in dir as this release does.
func openIndex(dir string) error {
	db, err := store.Open(dir, store.Options{ReadOnly: true})
	if err != nil {
		return err
	}
	defer db.Close()
	_, err = index.Open(db, regtest, index.Options{})
	return err
}

// noneBeside checks that no replacement left a directory beside dir.
func noneBeside(t *testing.T, dir string) {
	t.Helper()
	for _, s := range []string{".new", ".old", ".staging", ".new.staging"} {
		if _, err := os.Stat(dir + s); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s left beside the index: %v", s, err)
		}
	}
}

// upgrade is the bucket and chain two releases share.
type upgrade struct {
	t       *testing.T
	r       *rig
	objects objstore.Bucket
	settled chaingen.ScriptStat        // a script no block after the first tip touches
	seen    map[uint32]map[string]bool // data files seen in each schema's part
}

// latest returns the manifest LATEST names in schema's part of the
// bucket, or nil.
func (u *upgrade) latest(schema uint32) *snapshot.Manifest {
	u.t.Helper()
	ctx := context.Background()
	b := snapshot.SchemaBucket(u.objects, schema)
	key, err := read(ctx, b, snapshot.LatestKey)
	if objstore.IsNotFound(err) {
		return nil
	}
	if err != nil {
		u.t.Fatal(err)
	}
	body, err := read(ctx, b, string(key))
	if err != nil {
		u.t.Fatalf("schema %d: LATEST names %s: %v", schema, key, err)
	}
	m, err := snapshot.ParseManifest(body)
	if err != nil {
		u.t.Fatalf("schema %d: LATEST names %s: %v", schema, key, err)
	}
	return m
}

func read(ctx context.Context, b objstore.Bucket, key string) ([]byte, error) {
	rc, err := b.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

// waitLatest waits until schema's LATEST names a snapshot at height.
func (u *upgrade) waitLatest(schema uint32, height int) {
	u.t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		m := u.latest(schema)
		if m != nil && int(m.Height) == height {
			if m.Schema != schema {
				u.t.Fatalf("%s in schema %d's part of the bucket is of schema %d", m.Key(), schema, m.Schema)
			}
			return
		}
		if time.Now().After(deadline) {
			u.t.Fatalf("schema %d: LATEST names %v, not a snapshot at %d, after a minute", schema, m, height)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// manifests lists schema's snapshots, newest first.
func (u *upgrade) manifests(schema uint32) []*snapshot.Manifest {
	u.t.Helper()
	ms, err := (&snapshot.Restorer{Bucket: u.objects, Schema: schema}).List(context.Background())
	if err != nil {
		u.t.Fatal(err)
	}
	return ms
}

// intact checks that every snapshot of schema in the bucket verifies: no
// retention deleted an object one of them needs. A snapshot its own
// builder's retention is dropping meanwhile does not count.
func (u *upgrade) intact(schema uint32) {
	u.t.Helper()
	ctx := context.Background()
	for _, name := range u.names(schema) {
		if strings.HasPrefix(name, snapshot.SchemaPrefix(schema)+snapshot.ObjectPrefix) {
			u.seen[schema][name] = true
		}
	}
	for _, m := range u.manifests(schema) {
		if err := (&snapshot.Restorer{Bucket: u.objects}).Verify(ctx, m); err != nil {
			if ok, _ := snapshot.SchemaBucket(u.objects, schema).Exists(ctx, m.Key()); ok {
				tally.compared(0, 0, 1)
				u.t.Errorf("schema %d snapshot %s damaged: %v", schema, m.Key(), err)
			}
		}
	}
}

// names lists the objects of schema's part of the bucket.
func (u *upgrade) names(schema uint32) []string {
	u.t.Helper()
	var names []string
	if err := u.objects.Iter(context.Background(), snapshot.SchemaPrefix(schema), func(name string) error {
		names = append(names, name)
		return nil
	}); err != nil {
		u.t.Fatal(err)
	}
	return names
}

// layout checks that the bucket holds the given schemas' parts, each
// with its LATEST, manifests and data files, and nothing else.
func (u *upgrade) layout(schemas ...uint32) {
	u.t.Helper()
	var all []string
	if err := u.objects.Iter(context.Background(), "", func(name string) error {
		all = append(all, name)
		return nil
	}); err != nil {
		u.t.Fatal(err)
	}
	counts := map[uint32]int{}
	for _, name := range all {
		in := slices.IndexFunc(schemas, func(s uint32) bool { return strings.HasPrefix(name, snapshot.SchemaPrefix(s)) })
		if in < 0 {
			u.t.Errorf("%s is outside the parts of schemas %v", name, schemas)
			continue
		}
		counts[schemas[in]]++
	}
	for _, s := range schemas {
		names := u.names(s)
		for _, part := range []string{snapshot.LatestKey, snapshot.ManifestPrefix, snapshot.ObjectPrefix} {
			if !slices.ContainsFunc(names, func(n string) bool { return strings.HasPrefix(n, snapshot.SchemaPrefix(s)+part) }) {
				u.t.Errorf("schema %d's part of the bucket has no %s", s, part)
			}
		}
	}
	u.t.Logf("bucket: objects by schema %v", counts)
}

// settledScript is the script with the longest history among those no
// block above height touches, so its answers are known at any later tip.
func settledScript(t *testing.T, c *chaingen.Chain, height int) chaingen.ScriptStat {
	t.Helper()
	scripts, err := c.Scripts()
	if err != nil {
		t.Fatal(err)
	}
	var best chaingen.ScriptStat
	for _, s := range scripts {
		if s.LastHeight <= height && s.History > best.History {
			best = s
		}
	}
	if best.History < 2 {
		t.Fatalf("no script with a history settled by height %d", height)
	}
	return best
}

// servesCorrectly checks what a wallet would see at the server at addr:
// the daemon's header at height as the tip, and the settled script's
// whole history and balance.
func (u *upgrade) servesCorrectly(what, addr string, height int) {
	u.t.Helper()
	raw, err := u.r.btcd.Call("getblockhash", height)
	if err != nil {
		u.t.Fatal(err)
	}
	var hash string
	json.Unmarshal(raw, &hash)
	if raw, err = u.r.btcd.Call("getblockheader", hash, false); err != nil {
		u.t.Fatal(err)
	}
	var header string
	json.Unmarshal(raw, &header)

	e := dialElectrum(u.t, addr)
	res, err := e.call("blockchain.headers.subscribe", nil)
	if err != nil {
		u.t.Fatal(err)
	}
	var tip struct {
		Height int
		Hex    string
	}
	if err := json.Unmarshal(res, &tip); err != nil || tip.Height != height || tip.Hex != header {
		u.t.Errorf("%s: headers.subscribe %s, want height %d, header %s", what, res, height, header)
	}
	sh := chain.ScriptHashOf(u.settled.PkScript).Hex()
	res, err = e.call("blockchain.scripthash.get_history", []any{sh})
	if err != nil {
		u.t.Fatal(err)
	}
	var hist []struct {
		TxHash string `json:"tx_hash"`
		Height int
	}
	if err := json.Unmarshal(res, &hist); err != nil || len(hist) != u.settled.History ||
		hist[0].Height != u.settled.FirstHeight || hist[len(hist)-1].Height != u.settled.LastHeight {
		u.t.Errorf("%s: get_history %.200s: want %d transactions from height %d to %d", what, res,
			u.settled.History, u.settled.FirstHeight, u.settled.LastHeight)
	}
	res, err = e.call("blockchain.scripthash.get_balance", []any{sh})
	if err != nil {
		u.t.Fatal(err)
	}
	var bal struct{ Confirmed, Unconfirmed int64 }
	if err := json.Unmarshal(res, &bal); err != nil || bal.Confirmed != u.settled.Balance || bal.Unconfirmed != 0 {
		u.t.Errorf("%s: get_balance %s, want %d confirmed", what, res, u.settled.Balance)
	}
	tally.compared(3, 0, 0)
}
