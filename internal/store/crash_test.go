package store

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// crashChildEnv, when set, makes the test binary run crashChild on the
// directory it names instead of the tests.
const crashChildEnv = "AMBER_STORE_CRASH_CHILD_DIR"

func TestMain(m *testing.M) {
	if dir := os.Getenv(crashChildEnv); dir != "" {
		os.Exit(crashChild(dir))
	}
	if dir := os.Getenv(diskFullChildEnv); dir != "" {
		os.Exit(diskFullChild(dir))
	}
	os.Exit(m.Run())
}

// The crash workload. Batch n (from 1) writes rowsIn(n) rows r/<n>/<i>
// whose values name n, an undo row u/<n>, deletes the undo row of batch
// n-undoKeep, and sets "tip" to n, like the index's ConnectBlock. After a
// crash the DB must hold batches 1..tip exactly.
const undoKeep = 10

func rowsIn(n uint64) int {
	if n%8 == 0 {
		return 600 + int(n*7919%60) // a sorted batch too big for the memtable: ingested
	}
	return 5 + int(n*7919%60)
}

func rowKey(n uint64, i int) []byte { return fmt.Appendf(nil, "r/%08d/%03d", n, i) }

func undoKey(n uint64) []byte { return fmt.Appendf(nil, "u/%08d", n) }

func rowValue(n uint64, i int) []byte {
	// 50 to ~1500 bytes, so that memtables fill and flush during the run.
	v := make([]byte, 8, 8+50+(int(n)*31+i*17)%1450)
	binary.BigEndian.PutUint64(v, n)
	return v[:cap(v)]
}

// crashChild writes batches until it is killed, reporting each commit on
// stderr once Commit has returned: "committed n" when it is durable,
// "applied n" when not. Every fourth batch is a sorted batch (as a bulk
// sync commits), every other one of them large enough to be ingested as
// tables, and the batch before it is not synced: the sorted batch's
// commit must make it durable too.
func crashChild(dir string) int {
	db, err := Open(dir, Options{MemTableSize: 512 << 10, CacheSize: 8 << 20})
	if err != nil {
		fmt.Fprintf(os.Stderr, "error: %v\n", err)
		return 2
	}
	var tip uint64
	switch v, err := db.Get([]byte("tip")); {
	case err == nil:
		tip = binary.BigEndian.Uint64(v)
	case !errors.Is(err, ErrNotFound):
		fmt.Fprintf(os.Stderr, "error: %v\n", err)
		return 2
	}
	for n := tip + 1; ; n++ {
		b := db.NewBatch()
		if n%4 == 0 {
			b = db.NewSortedBatch()
		}
		synced := n%4 != 3
		for i := range rowsIn(n) {
			if err := b.Set(rowKey(n, i), rowValue(n, i)); err != nil {
				fmt.Fprintf(os.Stderr, "error: %v\n", err)
				return 2
			}
		}
		_ = b.Set(undoKey(n), []byte("undo"))
		if n > undoKeep {
			_ = b.Delete(undoKey(n - undoKeep))
		}
		_ = b.Set([]byte("tip"), binary.BigEndian.AppendUint64(nil, n))
		if b.sorted != nil && b.sorted.small(db) != (n%8 != 0) {
			fmt.Fprintf(os.Stderr, "batch %d of %d bytes: small %v\n", n, b.sorted.size(), b.sorted.small(db))
		}
		if err := b.Commit(synced); err != nil {
			fmt.Fprintf(os.Stderr, "error: %v\n", err)
			return 2
		}
		b.Close()
		if synced {
			fmt.Fprintf(os.Stderr, "committed %d\n", n)
		} else {
			fmt.Fprintf(os.Stderr, "applied %d\n", n)
		}
	}
}

// TestCrashKill SIGKILLs a writer at random moments and checks after each
// kill that the DB holds a prefix of the committed batches, each whole, and
// every batch whose synced commit had returned.
func TestCrashKill(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, seed>>32))
	dir := t.TempDir()
	for round := range 6 {
		// Most rounds kill mid-stream after some commits; every third kills
		// at a random moment from the start, possibly during Open's recovery.
		after := 5 + rng.IntN(300)
		pause := time.Duration(rng.IntN(3000)) * time.Microsecond
		if round%3 == 2 {
			after, pause = 0, time.Duration(rng.IntN(100))*time.Millisecond
		}
		before := checkCrashStateIfAny(t, dir, round)
		reported, seen := runAndKill(t, dir, after, pause)
		tip := checkCrashState(t, dir)
		switch {
		case tip < max(reported, before):
			t.Fatalf("round %d: tip %d, but batch %d was committed", round, tip, max(reported, before))
		case seen > 0 && tip > seen+1:
			t.Fatalf("round %d: tip %d, more than one batch past the last report %d", round, tip, seen)
		}
		t.Logf("round %d: killed after %d reports, last %d; reopened at tip %d", round, after, reported, tip)
	}
}

// checkCrashStateIfAny returns the tip before a round (0 before the first).
func checkCrashStateIfAny(t *testing.T, dir string, round int) uint64 {
	if round == 0 {
		return 0
	}
	return checkCrashState(t, dir)
}

// runAndKill runs crashChild on dir and kills it: after it has reported
// `after` commits and a further pause, or, when after is 0, once pause has
// passed since its start. It returns the last batch the child reported
// durable, and the last it reported at all.
func runAndKill(t *testing.T, dir string, after int, pause time.Duration) (durable, last uint64) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+dir)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var seen int
	var killed atomic.Bool
	kill := func() {
		if killed.CompareAndSwap(false, true) {
			if err := cmd.Process.Kill(); err != nil {
				t.Errorf("kill: %v", err)
			}
		}
	}
	if after == 0 {
		timer := time.AfterFunc(pause, kill)
		defer timer.Stop()
	}
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		line := sc.Text()
		rest, synced := strings.CutPrefix(line, "committed ")
		if !synced {
			var ok bool
			if rest, ok = strings.CutPrefix(line, "applied "); !ok {
				t.Errorf("child: %s", line)
				continue
			}
		}
		n, err := strconv.ParseUint(rest, 10, 64)
		if err != nil {
			t.Fatalf("child: %q: %v", line, err)
		}
		last = n
		if synced {
			durable = n
		}
		if seen++; seen == after {
			time.Sleep(pause)
			kill()
		}
	}
	err = cmd.Wait()
	if !killed.Load() {
		t.Fatalf("child ended by itself after %d commits: %v", seen, err)
	}
	return durable, last
}

// checkCrashState opens dir and checks the workload's invariant; it
// returns the tip.
func checkCrashState(t *testing.T, dir string) uint64 {
	t.Helper()
	db := openT(t, dir, Options{})
	defer db.Close()
	v, err := db.Get([]byte("tip"))
	if err != nil {
		t.Fatalf("tip: %v", err)
	}
	tip := binary.BigEndian.Uint64(v)

	rows := map[uint64]int{}
	err = db.Scan([]byte("r/"), func(k, v []byte) error {
		n, err := strconv.ParseUint(string(k[2:10]), 10, 64)
		if err != nil {
			return err
		}
		i, _ := strconv.Atoi(string(k[11:]))
		if want := rowValue(n, i); string(v) != string(want) {
			return fmt.Errorf("row %s: value of %d bytes, want %d", k, len(v), len(want))
		}
		rows[n]++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for n := uint64(1); n <= tip; n++ {
		if rows[n] != rowsIn(n) {
			t.Errorf("tip %d: batch %d has %d of its %d rows", tip, n, rows[n], rowsIn(n))
		}
		delete(rows, n)
	}
	for n, c := range rows {
		t.Errorf("tip %d: %d rows of batch %d, beyond the tip", tip, c, n)
	}

	var undo []uint64
	err = db.Scan([]byte("u/"), func(k, _ []byte) error {
		n, err := strconv.ParseUint(string(k[2:]), 10, 64)
		undo = append(undo, n)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	first := uint64(1)
	if tip > undoKeep {
		first = tip - undoKeep + 1
	}
	ok := len(undo) == int(tip-first+1)
	for i, n := range undo {
		ok = ok && n == first+uint64(i)
	}
	if !ok {
		t.Errorf("tip %d: undo rows %v, want %d..%d", tip, undo, first, tip)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	return tip
}
