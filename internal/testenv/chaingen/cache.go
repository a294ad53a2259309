package chaingen

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/btcsuite/btcd/wire/v2"

	"amber/internal/testenv"
)

// CacheDir is the directory, relative to the repository root, that Load
// keeps chain files in. It is ignored by git.
const CacheDir = ".bench-cache"

// fileMagic starts every chain file; fileFormat is the layout version
// stored in its header.
const (
	fileMagic  = "AMBRCHN\n"
	fileFormat = 1
)

var (
	// ErrCorrupt is returned for a chain file that is truncated, fails
	// its checksum or does not hold a chain.
	ErrCorrupt = errors.New("chaingen: corrupt chain file")
	// ErrStale is returned for a sound chain file made by another
	// GeneratorVersion, or for another spec than the one asked for.
	ErrStale = errors.New("chaingen: stale chain file")
)

// fileHeader is the JSON header of a chain file.
type fileHeader struct {
	Format    int    `json:"format"`
	Generator int    `json:"generator"`
	Spec      Spec   `json:"spec"`
	Blocks    int    `json:"blocks"`
	Txs       int    `json:"txs"`
	Scripts   int    `json:"scripts"`
	Tip       string `json:"tip"`
}

// WriteFile writes the chain to path, atomically: to a temporary file in
// the same directory, synced, then renamed over path, and the directory
// synced. The layout is described in the package documentation.
func (c *Chain) WriteFile(path string) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return fmt.Errorf("chaingen: write %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	sum := sha256.New()
	w := bufio.NewWriterSize(io.MultiWriter(f, sum), 1<<20)
	if err := c.encode(w); err != nil {
		return fmt.Errorf("chaingen: write %s: %w", path, err)
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("chaingen: write %s: %w", path, err)
	}
	if _, err := f.Write(sum.Sum(nil)); err != nil {
		return fmt.Errorf("chaingen: write %s: %w", path, err)
	}
	if err := f.Chmod(0o644); err != nil {
		return fmt.Errorf("chaingen: write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("chaingen: sync %s: %w", f.Name(), err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("chaingen: close %s: %w", f.Name(), err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("chaingen: rename into %s: %w", path, err)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync() // best effort: the file itself is complete
		d.Close()
	}
	return nil
}

// encode writes everything but the checksum.
func (c *Chain) encode(w io.Writer) error {
	tip := c.TipHash()
	hdr, err := json.Marshal(fileHeader{
		Format:    fileFormat,
		Generator: GeneratorVersion,
		Spec:      c.Spec,
		Blocks:    len(c.Blocks),
		Txs:       c.txs,
		Scripts:   len(c.kinds),
		Tip:       tip.String(),
	})
	if err != nil {
		return err
	}
	var n [4]byte
	binary.LittleEndian.PutUint32(n[:], uint32(len(hdr)))
	kinds := make([]byte, len(c.kinds))
	for i, k := range c.kinds {
		kinds[i] = byte(k)
	}
	for _, b := range [][]byte{[]byte(fileMagic), n[:], hdr, kinds} {
		if _, err := w.Write(b); err != nil {
			return err
		}
	}
	for _, b := range c.Blocks {
		binary.LittleEndian.PutUint32(n[:], uint32(len(b)))
		if _, err := w.Write(n[:]); err != nil {
			return err
		}
		if _, err := w.Write(b); err != nil {
			return err
		}
	}
	return nil
}

// ReadFile reads a chain file written by WriteFile and checks it: its
// checksum, its layout, that its blocks form a chain on regtest's genesis
// block ending at the recorded tip, and that GeneratorVersion made it.
// Errors wrap ErrCorrupt or ErrStale, or are I/O errors. The blocks share
// the buffer the file was read into.
func ReadFile(path string) (*Chain, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("chaingen: read %s: %w", path, err)
	}
	c, err := decode(data)
	if err != nil {
		return nil, fmt.Errorf("chaingen: read %s: %w", path, err)
	}
	return c, nil
}

// decode parses and checks a whole chain file.
func decode(data []byte) (*Chain, error) {
	const minLen = len(fileMagic) + 4 + sha256.Size
	if len(data) < minLen || string(data[:len(fileMagic)]) != fileMagic {
		return nil, fmt.Errorf("%w: no chain file header", ErrCorrupt)
	}
	body, sum := data[:len(data)-sha256.Size], data[len(data)-sha256.Size:]
	if got := sha256.Sum256(body); !bytes.Equal(got[:], sum) {
		return nil, fmt.Errorf("%w: checksum mismatch", ErrCorrupt)
	}
	r := body[len(fileMagic):]
	next := func(n int) ([]byte, bool) {
		if n < 0 || n > len(r) {
			return nil, false
		}
		b := r[:n:n]
		r = r[n:]
		return b, true
	}
	lenField := func() (int, bool) {
		b, ok := next(4)
		if !ok {
			return 0, false
		}
		return int(binary.LittleEndian.Uint32(b)), true
	}
	n, _ := lenField()
	raw, ok := next(n)
	var hdr fileHeader
	if !ok || json.Unmarshal(raw, &hdr) != nil || hdr.Format != fileFormat {
		return nil, fmt.Errorf("%w: unreadable header", ErrCorrupt)
	}
	if hdr.Generator != GeneratorVersion {
		return nil, fmt.Errorf("%w: made by generator version %d, this is version %d",
			ErrStale, hdr.Generator, GeneratorVersion)
	}
	kindBytes, ok := next(hdr.Scripts)
	if !ok || hdr.Blocks < 0 || hdr.Blocks > len(r)/(4+wire.MaxBlockHeaderPayload) {
		return nil, fmt.Errorf("%w: header promises more than the file holds", ErrCorrupt)
	}
	kinds := make([]testenv.ScriptKind, len(kindBytes))
	for i, k := range kindBytes {
		kinds[i] = testenv.ScriptKind(k)
	}
	blocks := make([][]byte, hdr.Blocks)
	for i := range blocks {
		n, ok := lenField()
		if ok {
			blocks[i], ok = next(n)
		}
		if !ok {
			return nil, fmt.Errorf("%w: block %d is cut short", ErrCorrupt, i+1)
		}
	}
	if len(r) != 0 {
		return nil, fmt.Errorf("%w: %d bytes after the last block", ErrCorrupt, len(r))
	}
	c, err := newChain(hdr.Spec, blocks, kinds, hdr.Txs, 0)
	if err != nil {
		return nil, err
	}
	if tip := c.TipHash(); tip.String() != hdr.Tip {
		return nil, fmt.Errorf("%w: tip %s, header says %s", ErrCorrupt, tip, hdr.Tip)
	}
	return c, nil
}

// Load returns the chain of spec from the cache under the repository root
// (CacheDir), generating and caching it first when it is missing, stale
// or corrupt. It fails the test on error, and logs what it did.
func Load(t testing.TB, spec Spec) *Chain {
	t.Helper()
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	c, err := LoadDir(filepath.Join(root, CacheDir), spec, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// LoadDir returns the chain of spec from its file in dir (named by
// Spec.CacheFileName), generating it and writing the file first when the
// file is missing, stale or corrupt; a corrupt or stale file is kept
// aside as <file>.broken. Generation is serialised across processes with
// a file lock, so parallel test binaries generate a chain once. logf, if
// not nil, is told what happened and how long it took.
func LoadDir(dir string, spec Spec, logf func(format string, args ...any)) (*Chain, error) {
	if logf == nil {
		logf = func(string, ...any) {}
	}
	norm, err := spec.normalized()
	if err != nil {
		return nil, err
	}
	name, _ := norm.CacheFileName()
	path := filepath.Join(dir, name)

	// Files appear complete, by rename, so a sound one may be read
	// without the lock.
	start := time.Now()
	c, err := readMatching(path, norm)
	if err == nil {
		logf("chaingen: read %s: %d blocks, %d transactions in %s", path, c.Height(), c.Txs(), since(start))
		return c, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("chaingen: create %s: %w", dir, err)
	}
	unlock, err := testenv.LockFile(filepath.Join(dir, "."+name+".lock"))
	if err != nil {
		return nil, err
	}
	defer unlock()

	// Another process may have written the file while we waited.
	start = time.Now()
	c, err = readMatching(path, norm)
	switch {
	case err == nil:
		logf("chaingen: read %s: %d blocks, %d transactions in %s", path, c.Height(), c.Txs(), since(start))
		return c, nil
	case errors.Is(err, ErrCorrupt) || errors.Is(err, ErrStale):
		logf("%v; regenerating", err)
		if err := os.Rename(path, path+".broken"); err != nil {
			return nil, fmt.Errorf("chaingen: set aside %s: %w", path, err)
		}
	case !errors.Is(err, fs.ErrNotExist):
		return nil, err
	}
	// Temporary files of interrupted writers are ours to remove now.
	stale, _ := filepath.Glob(filepath.Join(dir, "."+name+".tmp-*"))
	for _, s := range stale {
		_ = os.Remove(s)
	}

	c, err = Generate(norm)
	if err != nil {
		return nil, err
	}
	if err := c.WriteFile(path); err != nil {
		return nil, err
	}
	size := int64(0)
	if st, err := os.Stat(path); err == nil {
		size = st.Size()
	}
	secs := c.Took.Seconds()
	logf("chaingen: generated %s in %s (%.0f blocks/s, %.0f tx/s): %d blocks, %d transactions, %d bytes",
		path, c.Took.Round(time.Millisecond), float64(c.Height())/secs, float64(c.Txs())/secs,
		c.Height(), c.Txs(), size)
	return c, nil
}

// readMatching reads the chain file at path and checks that it holds the
// chain of the normalized spec.
func readMatching(path string, spec Spec) (*Chain, error) {
	c, err := ReadFile(path)
	if err != nil {
		return nil, err
	}
	if c.Spec != spec {
		return nil, fmt.Errorf("chaingen: read %s: %w: it holds spec %+v, want %+v", path, ErrStale, c.Spec, spec)
	}
	return c, nil
}

// since returns the time since start, rounded for logs.
func since(start time.Time) time.Duration { return time.Since(start).Round(time.Millisecond) }
