package index

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/btcsuite/btcd/chainhash/v2"

	"amber/internal/chain"
	"amber/internal/merkle"
	"amber/internal/store"
)

// Errors callers branch on.
var (
	// ErrSchema means the DB was written with another key layout.
	ErrSchema = errors.New("index: schema version mismatch")
	// ErrNetwork means the DB belongs to another network.
	ErrNetwork = errors.New("index: network mismatch")
	// ErrReorgTooDeep means a reorg reaches below the kept undo records.
	ErrReorgTooDeep = errors.New("index: reorg deeper than REORG_LIMIT")
)

// Tip is the last fully indexed block.
type Tip struct {
	Height  int32 // -1 when nothing is indexed yet
	Hash    chainhash.Hash
	TxCount uint64 // transactions indexed so far: the next tx_num
}

// tipValue layout: height uint32 (4), hash natural order (32), next tx_num
// uint40 (5).
func (t Tip) marshal() []byte {
	b := make([]byte, 4+32+txNumLen)
	binary.BigEndian.PutUint32(b, uint32(t.Height))
	copy(b[4:], t.Hash[:])
	putTxNum(b[36:], t.TxCount)
	return b
}

func unmarshalTip(b []byte) (Tip, error) {
	if len(b) != 4+32+txNumLen {
		return Tip{}, fmt.Errorf("index: tip row has %d bytes, want %d", len(b), 4+32+txNumLen)
	}
	var t Tip
	t.Height = int32(binary.BigEndian.Uint32(b))
	copy(t.Hash[:], b[4:36])
	t.TxCount = getTxNum(b[36:])
	return t, nil
}

// Options tune an Index.
type Options struct {
	// ReorgLimit is how many blocks of undo records are kept.
	ReorgLimit int
	// UTXOCacheBytes bounds the cache of committed unspent outputs that
	// spends are resolved from before the DB (cache.go); zero disables it.
	UTXOCacheBytes int64
	// WriteMostly is store.Options.WriteMostly, for OpenDir: set by the
	// builder, which few read.
	WriteMostly bool
	Logger      *slog.Logger
}

// Index is the chain index over one store. Reads may run concurrently with
// one writer; a Writer's changes become visible when it commits.
type Index struct {
	db     *store.DB
	net    *chain.Network
	opts   Options
	logger *slog.Logger

	mu       sync.RWMutex
	tip      Tip
	txCounts []uint64 // cumulative tx count after each height; len = tip.Height+1
	writing  bool

	// trees caches the merkle trees of recently asked blocks (merkle
	// proofs ask for the same recent blocks again and again), bounded by
	// treeBytes; a commit that took blocks out clears it and bumps
	// treesGen, so a fill that raced with the reorg is dropped.
	trees      map[int32]*merkle.BlockTree
	treesBytes int
	treesGen   uint64
	treeHits   atomic.Uint64
	treeMisses atomic.Uint64

	// hdrMu guards hdrTree and orders checkpoint proofs against commits:
	// a commit holds it while the headers and the tip change, so a proof
	// never mixes kept nodes with headers of another branch.
	hdrMu   sync.RWMutex
	hdrTree *merkle.Tree

	utxos *utxoCache // used by the one Writer only
}

// headerTreeBase is the lowest level of the header merkle tree kept in
// memory: 16 bytes per block (15 MB at mainnet height) instead of 64, for
// four header reads per proof.
const headerTreeBase = 2

// blockTreeCacheBytes bounds the block merkle tree cache: a full mainnet
// block's tree (about 4,000 txids) takes 256 KB, so this holds the last
// hundred or so of them.
const blockTreeCacheBytes = 32 << 20

// Open reads the metadata of db, refusing a DB of another schema or
// network, and writes fresh metadata to an empty one.
func Open(db *store.DB, net *chain.Network, opts Options) (*Index, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.ReorgLimit <= 0 {
		opts.ReorgLimit = net.ReorgLimit
	}
	ix := &Index{db: db, net: net, opts: opts, logger: opts.Logger, tip: Tip{Height: -1}, hdrTree: merkle.NewTree(headerTreeBase),
		utxos: newUTXOCache(opts.UTXOCacheBytes)}
	v, err := db.Get(metaKey("schema"))
	switch {
	case errors.Is(err, store.ErrNotFound):
		return ix, ix.initMeta()
	case err != nil:
		return nil, fmt.Errorf("index: read schema version: %w", err)
	}
	if len(v) != 4 || binary.BigEndian.Uint32(v) != SchemaVersion {
		got := "unreadable"
		if len(v) == 4 {
			got = fmt.Sprint(binary.BigEndian.Uint32(v))
		}
		return nil, fmt.Errorf("%w: the DB has schema %s, this amber reads %d; restore a matching snapshot or empty DB_DIRECTORY to reindex", ErrSchema, got, SchemaVersion)
	}
	name, err := db.Get(metaKey("network"))
	if err != nil {
		return nil, fmt.Errorf("index: read network: %w", err)
	}
	gen, err := db.Get(metaKey("genesis"))
	if err != nil {
		return nil, fmt.Errorf("index: read genesis: %w", err)
	}
	if string(name) != net.String() || string(gen) != string(net.Genesis[:]) {
		return nil, fmt.Errorf("%w: the DB is for %s, configured network is %s; check NET and DB_DIRECTORY", ErrNetwork, name, net)
	}
	tv, err := db.Get(metaKey("tip"))
	if errors.Is(err, store.ErrNotFound) {
		return ix, nil
	}
	if err != nil {
		return nil, fmt.Errorf("index: read tip: %w", err)
	}
	if ix.tip, err = unmarshalTip(tv); err != nil {
		return nil, err
	}
	if err := ix.loadTxCounts(); err != nil {
		return nil, err
	}
	return ix, nil
}

func (ix *Index) initMeta() error {
	b := ix.db.NewBatch()
	defer b.Close()
	var sv [4]byte
	binary.BigEndian.PutUint32(sv[:], SchemaVersion)
	for _, kv := range [][2][]byte{
		{metaKey("schema"), sv[:]},
		{metaKey("network"), []byte(ix.net.String())},
		{metaKey("genesis"), ix.net.Genesis[:]},
	} {
		if err := b.Set(kv[0], kv[1]); err != nil {
			return fmt.Errorf("index: write metadata: %w", err)
		}
	}
	if err := b.Commit(true); err != nil {
		return fmt.Errorf("index: write metadata: %w", err)
	}
	return nil
}

func (ix *Index) loadTxCounts() error {
	counts := make([]uint64, 0, ix.tip.Height+1)
	err := ix.db.Scan([]byte{prefixTxCount}, func(k, v []byte) error {
		h := binary.BigEndian.Uint32(k[1:])
		if int(h) != len(counts) || len(v) != txNumLen {
			return fmt.Errorf("index: tx count rows broken at height %d", h)
		}
		if int32(h) > ix.tip.Height {
			return nil // rows past the tip cannot exist; ignore defensively
		}
		counts = append(counts, getTxNum(v))
		return nil
	})
	if err != nil {
		return fmt.Errorf("index: load tx counts: %w", err)
	}
	if len(counts) != int(ix.tip.Height)+1 || counts[len(counts)-1] != ix.tip.TxCount {
		return fmt.Errorf("index: tx counts (%d rows) disagree with tip %d; the DB is damaged, restore a snapshot", len(counts), ix.tip.Height)
	}
	ix.txCounts = counts
	return nil
}

// Network is the network the index belongs to.
func (ix *Index) Network() *chain.Network { return ix.net }

// Tip returns the last fully indexed block.
func (ix *Index) Tip() Tip {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return ix.tip
}

// TxNumHeight returns the height of the block holding tx_num n, and false
// if n is past the tip.
func (ix *Index) TxNumHeight(n uint64) (int32, bool) {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return heightOf(ix.txCounts, n)
}

// heightOf finds the first height whose cumulative count exceeds n.
func heightOf(counts []uint64, n uint64) (int32, bool) {
	h := sort.Search(len(counts), func(i int) bool { return counts[i] > n })
	if h == len(counts) {
		return 0, false
	}
	return int32(h), true
}

// BlockTxRange returns the first tx_num of the block at height and its
// number of transactions.
func (ix *Index) BlockTxRange(height int32) (first uint64, count int, ok bool) {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	if height < 0 || int(height) >= len(ix.txCounts) {
		return 0, 0, false
	}
	if height > 0 {
		first = ix.txCounts[height-1]
	}
	return first, int(ix.txCounts[height] - first), true
}

// OpenDir opens (or creates) the store in dir with a block cache of
// cacheBytes and the index in it. The caller closes the returned store.
func OpenDir(dir string, cacheBytes int64, net *chain.Network, opts Options) (*store.DB, *Index, error) {
	db, err := store.Open(dir, store.Options{CacheSize: cacheBytes, WriteMostly: opts.WriteMostly, Logger: opts.Logger})
	if err != nil {
		return nil, nil, fmt.Errorf("index: open %s: %w", dir, err)
	}
	ix, err := Open(db, net, opts)
	if err != nil {
		db.Close()
		return nil, nil, err
	}
	return db, ix, nil
}

// StateKeys are the rows that name an index's state: schema, network,
// genesis and tip. Two copies of one index whose rows under these keys
// are equal hold the same rows, as long as neither was written to except
// by this package.
func StateKeys() [][]byte {
	return [][]byte{metaKey("schema"), metaKey("network"), metaKey("genesis"), metaKey("tip")}
}
