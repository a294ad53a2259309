package chaingen

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/btcsuite/btcd/txscript/v2"
	"github.com/btcsuite/btcd/wire/v2"

	"amber/internal/testenv"
)

func skipShort(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("starts btcd or generates a large chain; skipped with -short")
	}
}

var (
	tinyOnce  sync.Once
	tinyChain *Chain
	tinyErr   error
)

// tiny returns the Tiny chain from the repository's cache, shared by the
// tests of this package.
func tiny(t *testing.T) *Chain {
	t.Helper()
	tinyOnce.Do(func() {
		root, err := testenv.RepoRoot()
		if err != nil {
			tinyErr = err
			return
		}
		tinyChain, tinyErr = LoadDir(filepath.Join(root, CacheDir), Tiny, t.Logf)
	})
	if tinyErr != nil {
		t.Fatal(tinyErr)
	}
	return tinyChain
}

// quick is a spec small enough to generate many times.
var quick = Spec{Name: "quick", Seed: 7, Blocks: 130, Txs: 150, BusyScripts: 2}

func TestSpecNormalized(t *testing.T) {
	tests := []struct {
		name    string
		spec    Spec
		wantErr bool
		check   func(Spec) bool
	}{
		{"preset", Tiny, false, func(s Spec) bool {
			return s.BusyShare == defaultBusyShare && s.ReuseShare == defaultReuseShare &&
				s.ChainShare == defaultChainShare && s.NullDataShare == defaultNullDataShare
		}},
		{"no name", Spec{Blocks: 5}, false, func(s Spec) bool { return s.Name == "custom" }},
		{"negative share means none", Spec{Blocks: 5, ChainShare: -1}, false, func(s Spec) bool { return s.ChainShare == 0 }},
		{"coinbases only", Spec{Blocks: 50}, false, nil},
		{"no blocks", Spec{}, true, nil},
		{"txs before maturity", Spec{Blocks: 100, Txs: 1}, true, nil},
		{"negative txs", Spec{Blocks: 200, Txs: -1}, true, nil},
		{"share above one", Spec{Blocks: 200, BusyShare: 1.5}, true, nil},
		{"bad name", Spec{Name: "a/b", Blocks: 5}, true, nil},
		{"branch", Tiny.Branch(290, 15, 1), false, func(s Spec) bool { return s.height() == 305 }},
		{"branch from genesis", Spec{Blocks: 5}.Branch(0, 1, 0), false, func(s Spec) bool { return s.height() == 1 }},
		{"branch above the chain", Spec{Blocks: 5}.Branch(6, 1, 1), true, nil},
		{"branch without blocks", Spec{Blocks: 5}.Branch(3, 0, 1), true, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.spec.normalized()
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			if tc.check != nil && !tc.check(got) {
				t.Fatalf("normalized to %+v", got)
			}
		})
	}

	names := map[string]bool{}
	other := Tiny
	other.Seed++
	for _, s := range []Spec{Tiny, Small, other, Tiny.Branch(290, 15, 1), Tiny.Branch(290, 15, 2)} {
		n, err := s.CacheFileName()
		if err != nil || names[n] || filepath.Ext(n) != ".blocks" {
			t.Fatalf("cache file name %q, %v: want a new .blocks name", n, err)
		}
		names[n] = true
	}
}

// TestTinyContent checks the mix of the Tiny chain against what the
// package promises.
func TestTinyContent(t *testing.T) {
	c := tiny(t)
	st, err := c.Stats()
	if err != nil {
		t.Fatal(err)
	}
	scripts, err := c.Scripts()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("tiny: %+v, %d scripts", st, len(scripts))

	if c.Height() != Tiny.Blocks {
		t.Errorf("height %d, want %d", c.Height(), Tiny.Blocks)
	}
	if c.Txs() != st.Txs || st.Txs < Tiny.Txs*9/10 || st.Txs > Tiny.Txs*11/10 {
		t.Errorf("%d transactions (recorded %d), want %d ± 10%%", st.Txs, c.Txs(), Tiny.Txs)
	}

	t.Run("every kind paid and spent", func(t *testing.T) {
		type counts struct{ funded, spent, coinbase int }
		byClass := map[txscript.ScriptClass]*counts{}
		for _, s := range scripts {
			n := byClass[s.Class]
			if n == nil {
				n = &counts{}
				byClass[s.Class] = n
			}
			n.funded += s.Funded
			n.spent += s.Spent
			n.coinbase += s.Coinbase
		}
		tests := []struct {
			class     txscript.ScriptClass
			spendable bool
		}{
			{txscript.PubKeyTy, true},
			{txscript.PubKeyHashTy, true},
			{txscript.WitnessV0PubKeyHashTy, true},
			{txscript.ScriptHashTy, true},
			{txscript.WitnessV0ScriptHashTy, true},
			{txscript.WitnessV1TaprootTy, true},
			{txscript.NullDataTy, false},
		}
		for _, tc := range tests {
			n := byClass[tc.class]
			if n == nil || n.funded < 20 || tc.spendable && n.spent < 10 {
				t.Errorf("%v: %+v, want at least 20 outputs and 10 spends", tc.class, n)
			}
		}
		if len(byClass) != len(tests) {
			t.Errorf("classes %v, want exactly %d", slices.Collect(func(yield func(txscript.ScriptClass) bool) {
				for k := range byClass {
					if !yield(k) {
						return
					}
				}
			}), len(tests))
		}
		coinbaseKinds := 0
		for class, n := range byClass {
			if class != txscript.NullDataTy && n.coinbase > 0 {
				coinbaseKinds++
			}
		}
		if coinbaseKinds < 4 {
			t.Errorf("coinbases pay to %d script kinds, want at least 4", coinbaseKinds)
		}
	})

	t.Run("busy and quiet scripts", func(t *testing.T) {
		var wallet []ScriptStat
		for _, s := range scripts {
			if s.Class != txscript.NullDataTy {
				wallet = append(wallet, s)
			}
		}
		busiest := slices.MaxFunc(wallet, func(a, b ScriptStat) int { return a.Funded - b.Funded })
		if share := float64(busiest.Funded) / float64(st.Outputs); share < 0.05 {
			t.Errorf("the busiest script has %d of %d outputs (%.1f%%), want at least 5%%",
				busiest.Funded, st.Outputs, 100*share)
		}
		quiet := 0
		for _, s := range wallet {
			if s.Funded <= 2 {
				quiet++
			}
		}
		if quiet < len(wallet)*3/4 {
			t.Errorf("%d of %d scripts are used once or twice, want at least three quarters", quiet, len(wallet))
		}
		if scripts[0].History < 100*scripts[len(wallet)/2].History {
			t.Errorf("history lengths: busiest %d, median %d; want a long tail", scripts[0].History, scripts[len(wallet)/2].History)
		}
	})

	t.Run("transaction shapes", func(t *testing.T) {
		if st.MaxInputs != maxInputs {
			t.Errorf("at most %d inputs, want some with %d", st.MaxInputs, maxInputs)
		}
		if st.MaxOutputs < maxPayments+1 {
			t.Errorf("at most %d outputs, want some with %d payments and change", st.MaxOutputs, maxPayments)
		}
		if avg := float64(st.Inputs) / float64(st.Txs); avg < 1.5 || avg > 4 {
			t.Errorf("%.2f inputs per transaction, want 1.5 to 4", avg)
		}
		if st.InBlockSpends < st.Txs/20 {
			t.Errorf("%d inputs spend outputs of their own block, want at least %d", st.InBlockSpends, st.Txs/20)
		}
		if st.NullData < st.Txs/50 {
			t.Errorf("%d OP_RETURN outputs, want at least %d", st.NullData, st.Txs/50)
		}
	})
}

// TestInputsVerify runs btcd's script engine over every input of the Tiny
// chain, which checks the generator's signatures without a node.
func TestInputsVerify(t *testing.T) {
	c := tiny(t)
	outputs := map[wire.OutPoint]*wire.TxOut{}
	inputs := 0
	for h := 1; h <= c.Height(); h++ {
		for i, tx := range c.Block(h).Transactions {
			if i > 0 {
				fetcher := txscript.NewMultiPrevOutFetcher(nil)
				for _, in := range tx.TxIn {
					prev, ok := outputs[in.PreviousOutPoint]
					if !ok {
						t.Fatalf("block %d tx %s spends unknown output %v", h, tx.TxHash(), in.PreviousOutPoint)
					}
					fetcher.AddPrevOut(in.PreviousOutPoint, prev)
				}
				hashes := txscript.NewTxSigHashes(tx, fetcher)
				for n, in := range tx.TxIn {
					prev := fetcher.FetchPrevOutput(in.PreviousOutPoint)
					vm, err := txscript.NewEngine(prev.PkScript, tx, n, txscript.StandardVerifyFlags, nil, hashes, prev.Value, fetcher)
					if err == nil {
						err = vm.Execute()
					}
					if err != nil {
						t.Fatalf("block %d tx %s input %d: %v", h, tx.TxHash(), n, err)
					}
					delete(outputs, in.PreviousOutPoint)
					inputs++
				}
			}
			txid := tx.TxHash()
			for vout, out := range tx.TxOut {
				outputs[wire.OutPoint{Hash: txid, Index: uint32(vout)}] = out
			}
		}
	}
	t.Logf("verified %d inputs", inputs)
}

// TestWallet checks that the rebuilt wallet owns exactly the chain's
// unspent outputs.
func TestWallet(t *testing.T) {
	c := tiny(t)
	w, err := c.Wallet()
	if err != nil {
		t.Fatal(err)
	}
	st, _ := c.Stats()
	scripts, _ := c.Scripts()
	var balance int64
	for _, s := range scripts {
		balance += s.Balance
	}
	utxos := w.UTXOs()
	if len(utxos) != st.Unspent || w.Balance() != balance {
		t.Fatalf("wallet has %d UTXOs worth %d, chain has %d worth %d", len(utxos), w.Balance(), st.Unspent, balance)
	}
	if w.Height() != int32(c.Height()) || w.TipHash() != c.TipHash() {
		t.Fatalf("wallet at %d %s, chain at %d %s", w.Height(), w.TipHash(), c.Height(), c.TipHash())
	}
}

// TestDeterminism regenerates Tiny and compares it with the cached copy
// byte for byte, and round-trips it through a file.
func TestDeterminism(t *testing.T) {
	cached := tiny(t)
	fresh, err := Generate(Tiny)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("generated tiny in %s", fresh.Took)
	if !slices.EqualFunc(fresh.Blocks, cached.Blocks, bytes.Equal) || !slices.Equal(fresh.kinds, cached.kinds) {
		t.Fatal("regenerating tiny gave different blocks or scripts")
	}
	path := filepath.Join(t.TempDir(), "tiny.blocks")
	if err := fresh.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	back, err := ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if back.Spec != fresh.Spec || back.Txs() != fresh.Txs() || back.TipHash() != fresh.TipHash() ||
		!slices.EqualFunc(back.Blocks, fresh.Blocks, bytes.Equal) || !slices.Equal(back.kinds, fresh.kinds) {
		t.Fatal("the chain read back differs from the one written")
	}
}

// TestCache checks that LoadDir generates once, reuses a sound file, and
// sets aside and regenerates a corrupt or stale one.
func TestCache(t *testing.T) {
	want, err := Generate(quick)
	if err != nil {
		t.Fatal(err)
	}
	other, err := Generate(Spec{Name: "quick", Seed: 8, Blocks: 3})
	if err != nil {
		t.Fatal(err)
	}
	name, _ := quick.CacheFileName()
	good := fileBytes(t, want)

	tests := []struct {
		name    string
		file    func() []byte // nil: no file at all
		readErr error         // what ReadFile says; nil for a sound file
		regen   bool
	}{
		{"missing", nil, os.ErrNotExist, true},
		{"sound", func() []byte { return good }, nil, false},
		{"flipped byte", func() []byte {
			b := slices.Clone(good)
			b[len(b)/2] ^= 1
			return b
		}, ErrCorrupt, true},
		{"flipped checksum", func() []byte {
			b := slices.Clone(good)
			b[len(b)-1] ^= 1
			return b
		}, ErrCorrupt, true},
		{"truncated", func() []byte { return good[:len(good)-100] }, ErrCorrupt, true},
		{"empty", func() []byte { return nil }, ErrCorrupt, true},
		{"garbage", func() []byte { return []byte("not a chain file at all, really not") }, ErrCorrupt, true},
		{"checksummed broken link", func() []byte {
			blocks := slices.Clone(want.Blocks)
			blocks[5] = slices.Clone(blocks[5])
			blocks[5][10] ^= 1 // in the previous block's hash
			return fileBytes(t, &Chain{Spec: want.Spec, Blocks: blocks, hashes: want.hashes, kinds: want.kinds, txs: want.txs})
		}, ErrCorrupt, true},
		{"checksummed extra bytes", func() []byte {
			b := slices.Clone(good[:len(good)-32])
			return reseal(append(b, 1, 2, 3, 4, 5, 0, 0, 0, 0))
		}, ErrCorrupt, true},
		{"other generator", func() []byte {
			return reseal(bytes.Replace(slices.Clone(good), []byte(`"generator":1,`), []byte(`"generator":0,`), 1))
		}, ErrStale, true},
		{"other spec", func() []byte { return fileBytes(t, other) }, nil, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, name)
			if tc.file != nil {
				if err := os.WriteFile(path, tc.file(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := ReadFile(path); !errors.Is(err, tc.readErr) {
				t.Fatalf("ReadFile: %v, want %v", err, tc.readErr)
			}
			var generated bool
			got, err := LoadDir(dir, quick, func(format string, args ...any) {
				generated = generated || strings.HasPrefix(format, "chaingen: generated")
				t.Logf(format, args...)
			})
			if err != nil {
				t.Fatal(err)
			}
			if generated != tc.regen {
				t.Fatalf("generated = %v, want %v", generated, tc.regen)
			}
			if !slices.EqualFunc(got.Blocks, want.Blocks, bytes.Equal) {
				t.Fatal("LoadDir returned another chain")
			}
			_, err = os.Stat(path + ".broken")
			if wantBroken := tc.file != nil && tc.regen; (err == nil) != wantBroken {
				t.Fatalf("stat %s.broken: %v; want it present: %v", name, err, wantBroken)
			}
			if again, err := ReadFile(path); err != nil || again.TipHash() != want.TipHash() {
				t.Fatalf("the cache file is not sound afterwards: %v", err)
			}
		})
	}
}

// TestCacheConcurrent loads one chain from several goroutines at once,
// each with its own lock file description: one generates, the others
// wait and read.
func TestCacheConcurrent(t *testing.T) {
	dir := t.TempDir()
	var generated atomic.Int32
	var wg sync.WaitGroup
	chains := make([]*Chain, 3)
	errs := make([]error, len(chains))
	for i := range chains {
		wg.Go(func() {
			chains[i], errs[i] = LoadDir(dir, quick, func(format string, _ ...any) {
				if strings.HasPrefix(format, "chaingen: generated") {
					generated.Add(1)
				}
			})
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
		if chains[i].TipHash() != chains[0].TipHash() {
			t.Fatal("loads disagree")
		}
	}
	if n := generated.Load(); n != 1 {
		t.Fatalf("generated %d times, want once", n)
	}
}

// fileBytes returns what WriteFile writes for c.
func fileBytes(t *testing.T, c *Chain) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := c.encode(&b); err != nil {
		t.Fatal(err)
	}
	return reseal(append(b.Bytes(), make([]byte, sha256.Size)...))
}

// reseal recomputes the checksum at the end of a chain file.
func reseal(b []byte) []byte {
	sum := sha256.Sum256(b[:len(b)-sha256.Size])
	copy(b[len(b)-sha256.Size:], sum[:])
	return b
}

// TestSubmitTiny replays Tiny into a fresh btcd, which checks every block
// and transaction, in two steps; then spends a coin of the chain's busiest
// script with the rebuilt wallet and mines a block on top.
func TestSubmitTiny(t *testing.T) {
	skipShort(t)
	c := tiny(t)
	r := testenv.StartRegtest(t, testenv.RegtestOptions{})
	b := r.Btcd

	c.Submit(t, b, 150)
	if h := b.Height(); h != 150 {
		t.Fatalf("btcd at height %d after submitting 150 blocks", h)
	}
	c.Submit(t, b, c.Height())
	best, err := b.Client.GetBestBlockHash()
	if err != nil {
		t.Fatal(err)
	}
	if *best != c.TipHash() || int(b.Height()) != c.Height() {
		t.Fatalf("btcd's best block is %s at %d, want %s at %d", best, b.Height(), c.TipHash(), c.Height())
	}
	if _, err := c.SubmitContext(t.Context(), b, 100); err == nil {
		t.Fatal("submitting below btcd's height succeeded")
	}

	w, err := c.Wallet()
	if err != nil {
		t.Fatal(err)
	}
	scripts, _ := c.Scripts()
	var coin *testenv.UTXO
	for _, u := range w.UTXOs() {
		if bytes.Equal(u.Script.PkScript, scripts[0].PkScript) {
			coin = u
			break
		}
	}
	if coin == nil {
		t.Fatalf("the busiest script (%v, history %d) has no unspent output", scripts[0].Class, scripts[0].History)
	}
	tx, _, err := w.BuildTx(testenv.TxRequest{
		Inputs:   []*testenv.UTXO{coin},
		NoSelect: true,
		Outputs:  []*wire.TxOut{testenv.NullDataOutput([]byte("after the replay"))},
	})
	if err != nil {
		t.Fatal(err)
	}
	txid := r.Broadcast(tx)
	b.Generate(1)
	if n := b.Confirmations(txid); n != 1 {
		t.Fatalf("spend of a chain output has %d confirmations after mining on top, want 1", n)
	}
}

// TestBranch checks that a branch shares the chain's blocks up to the
// fork and then spends some of the same coins in other transactions.
func TestBranch(t *testing.T) {
	base := tiny(t)
	br, err := Generate(Tiny.Branch(280, 25, 1))
	if err != nil {
		t.Fatal(err)
	}
	if br.Height() != 305 || br.Hash(280) != base.Hash(280) || br.Hash(281) == base.Hash(281) {
		t.Fatalf("branch of height %d: want 305, sharing blocks up to 280 only", br.Height())
	}
	spentBy := func(c *Chain, from, to int) map[wire.OutPoint]string {
		m := map[wire.OutPoint]string{}
		for h := from; h <= to; h++ {
			for _, tx := range c.Block(h).Transactions[1:] {
				for _, in := range tx.TxIn {
					m[in.PreviousOutPoint] = tx.TxHash().String()
				}
			}
		}
		return m
	}
	baseSpends := spentBy(base, 281, 300)
	conflicts := 0
	for op, txid := range spentBy(br, 281, 305) {
		if other, ok := baseSpends[op]; ok && other != txid {
			conflicts++
		}
	}
	if conflicts == 0 {
		t.Fatal("the branch spends no coin that the chain spends otherwise")
	}
	t.Logf("%d inputs of the branch conflict with the chain's", conflicts)
}

// TestSubmitBranch replays Tiny into btcd, then a branch: a branch that
// is not longer leaves btcd where it was, a longer one reorganises it.
func TestSubmitBranch(t *testing.T) {
	skipShort(t)
	base := tiny(t)
	br := Load(t, Tiny.Branch(290, 15, 1))
	b := testenv.StartBtcd(t, testenv.BtcdOptions{})
	base.Submit(t, b, base.Height())

	if _, err := br.SubmitContext(t.Context(), b, 300); err == nil {
		t.Fatal("a branch as long as btcd's chain took over")
	}
	if best, _ := b.Client.GetBestBlockHash(); *best != base.TipHash() {
		t.Fatalf("btcd left the chain for %s", best)
	}
	br.Submit(t, b, br.Height())
	if best, _ := b.Client.GetBestBlockHash(); *best != br.TipHash() || int(b.Height()) != br.Height() {
		t.Fatalf("btcd at %s, height %d; want the branch's tip %s at %d", best, b.Height(), br.TipHash(), br.Height())
	}
}

// TestGenerateSmall generates Small, reports the rate, checks it against
// the cached copy (Load writes one if missing), and replays it into btcd.
func TestGenerateSmall(t *testing.T) {
	skipShort(t)
	c, err := Generate(Small)
	if err != nil {
		t.Fatal(err)
	}
	secs := c.Took.Seconds()
	st, err := c.Stats()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("generated small in %s: %.0f blocks/s, %.0f tx/s; %+v",
		c.Took.Round(time.Millisecond), float64(c.Height())/secs, float64(c.Txs())/secs, st)

	cached := Load(t, Small)
	if !slices.EqualFunc(c.Blocks, cached.Blocks, bytes.Equal) {
		t.Fatal("the cached Small chain differs from a fresh one")
	}

	b := testenv.StartBtcd(t, testenv.BtcdOptions{})
	cached.Submit(t, b, cached.Height())
}

// TestGenerateLarge loads (generating and caching it first if needed) the
// Large chain and checks that it has scripts with long histories. It is
// run by hand only: CHAINGEN_LARGE=1 go test -run TestGenerateLarge
// -timeout 1h ./internal/testenv/chaingen/
func TestGenerateLarge(t *testing.T) {
	if os.Getenv("CHAINGEN_LARGE") == "" {
		t.Skip("set CHAINGEN_LARGE=1 to generate the Large chain")
	}
	c := Load(t, Large)
	st, err := c.Stats()
	if err != nil {
		t.Fatal(err)
	}
	scripts, _ := c.Scripts()
	t.Logf("large: %+v, %d scripts", st, len(scripts))
	long := 0
	for _, s := range scripts[:min(20, len(scripts))] {
		t.Logf("%-22v funded %7d spent %7d history %7d", s.Class, s.Funded, s.Spent, s.History)
		if s.History > 50_000 {
			long++
		}
	}
	if long < 3 {
		t.Fatalf("%d scripts have more than 50,000 history entries, want at least 3", long)
	}
}

// TestBusyPreset checks that the Busy chain, the benchmarks' busy-script
// case, has one script with more than 50,000 history entries.
func TestBusyPreset(t *testing.T) {
	if testing.Short() {
		t.Skip("generates (or reads) a 52,000-transaction chain")
	}
	c := Load(t, Busy)
	scripts, err := c.Scripts()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("busy: %d txs, busiest script %v with %d history entries, next %d",
		c.Txs(), scripts[0].Class, scripts[0].History, scripts[1].History)
	if scripts[0].History <= 50_000 {
		t.Fatalf("busiest script has %d history entries, want over 50,000", scripts[0].History)
	}
}

// TestWorkload checks that the benchmarks' workload variable picks the
// presets by name, defaults to Small and refuses anything else.
func TestWorkload(t *testing.T) {
	env := func(v string) func(string) string {
		return func(k string) string {
			if k == WorkloadEnv {
				return v
			}
			return ""
		}
	}
	for v, want := range map[string]string{"": "small", "small": "small", "large": "large", "tiny": "tiny"} {
		s, err := Workload(env(v))
		if err != nil || s.Name != want {
			t.Errorf("Workload(%q) = %q, %v; want %q", v, s.Name, err, want)
		}
	}
	for _, v := range []string{"busy", "huge", "Small"} {
		if s, err := Workload(env(v)); err == nil {
			t.Errorf("Workload(%q) = %q, want an error", v, s.Name)
		}
	}
}
