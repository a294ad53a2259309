package chainsync

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync/atomic"

	"github.com/btcsuite/btcd/chainhash/v2"

	"amber/internal/blockfiles"
	"amber/internal/chain"
	"amber/internal/daemon"
)

// MemorySource serves a chain of raw blocks held in memory, genesis first:
// blocks written by a generator or read from a block file, indexed with no
// daemon. It measures how fast the index alone can go.
type MemorySource struct {
	blocks [][]byte
	hashes []chainhash.Hash
	byHash map[chainhash.Hash]int
}

var _ Source = (*MemorySource)(nil)

// NewMemorySource indexes blocks by hash; blocks[i] is at height i.
func NewMemorySource(blocks [][]byte) (*MemorySource, error) {
	s := &MemorySource{blocks: blocks, byHash: make(map[chainhash.Hash]int, len(blocks))}
	for i, b := range blocks {
		if len(b) < chain.HeaderSize {
			return nil, fmt.Errorf("chainsync: block %d is %d bytes", i, len(b))
		}
		h := chain.HeaderHash(b[:chain.HeaderSize])
		s.hashes = append(s.hashes, h)
		s.byHash[h] = i
	}
	if len(blocks) == 0 {
		return nil, fmt.Errorf("chainsync: no blocks")
	}
	return s, nil
}

// BestBlock is the last block.
func (s *MemorySource) BestBlock(context.Context) (int32, chainhash.Hash, error) {
	return int32(len(s.blocks) - 1), s.hashes[len(s.hashes)-1], nil
}

// BlockHashes returns count hashes from start.
func (s *MemorySource) BlockHashes(_ context.Context, start int32, count int) ([]chainhash.Hash, error) {
	if start < 0 || int(start)+count > len(s.hashes) {
		return nil, fmt.Errorf("chainsync: heights %d+%d beyond %d blocks", start, count, len(s.hashes))
	}
	return s.hashes[start : int(start)+count], nil
}

// RawBlocks returns the blocks with the given hashes.
func (s *MemorySource) RawBlocks(_ context.Context, hashes []chainhash.Hash) ([][]byte, error) {
	out := make([][]byte, len(hashes))
	for i, h := range hashes {
		n, ok := s.byHash[h]
		if !ok {
			return nil, fmt.Errorf("chainsync: no block %s", h)
		}
		out[i] = s.blocks[n]
	}
	return out, nil
}

// DaemonSource serves blocks from the daemon. Against Bitcoin Core the
// client fetches a chunk's blocks over REST in parallel (binary, no hex),
// and falls back to batched JSON-RPC getblock for btcd.
//
// NOTE: Core 30's /rest/spenttxouts/<hash>.bin (the prevouts of a block's
// inputs) is deliberately not used. It gives each spent output's value
// and script, but the index keys a spend by the funding tx_num (the UTXO,
// outpoint and spend rows all carry it), which only the outpoint lookup
// gives, so it would add a request per block without removing a lookup.
// The UTXO cache removes most of them instead: on the 310k-transaction
// side-by-side chain with CACHE_MB=1200 every spend of an output from an
// earlier batch is answered from memory (BenchmarkSyncSegments reports the
// hit ratio), and btcd, which has no REST, keeps the same path.
//
// With Files, blocks are read from Bitcoin Core's block files instead,
// and only those the files lack are asked of the daemon; each block is
// then checked against its merkle root as well as its hash (Unverified).
type DaemonSource struct {
	C     *daemon.Client
	Files *blockfiles.Reader

	// FromFiles, when set, counts the blocks read from Files.
	FromFiles *atomic.Int64
}

var _ Source = DaemonSource{}

// BestBlock returns the daemon's tip.
func (s DaemonSource) BestBlock(ctx context.Context) (int32, chainhash.Hash, error) {
	info, err := s.C.BlockchainInfo(ctx)
	if err != nil {
		return 0, chainhash.Hash{}, err
	}
	return int32(info.Blocks), info.BestBlockHash, nil
}

// BlockHashes returns count hashes from start.
func (s DaemonSource) BlockHashes(ctx context.Context, start int32, count int) ([]chainhash.Hash, error) {
	return s.C.BlockHashes(ctx, int(start), count)
}

// RawBlocks returns the blocks with the given hashes.
func (s DaemonSource) RawBlocks(ctx context.Context, hashes []chainhash.Hash) ([][]byte, error) {
	if s.Files == nil {
		return s.C.RawBlocks(ctx, hashes)
	}
	out, err := s.Files.Blocks(hashes)
	if err != nil {
		return nil, err
	}
	var miss []chainhash.Hash
	var at []int
	for i, b := range out {
		if b == nil {
			miss = append(miss, hashes[i])
			at = append(at, i)
		}
	}
	if s.FromFiles != nil {
		s.FromFiles.Add(int64(len(hashes) - len(miss)))
	}
	if len(miss) == 0 {
		return out, nil
	}
	got, err := s.C.RawBlocks(ctx, miss)
	if err != nil {
		return nil, err
	}
	for j, i := range at {
		out[i] = got[j]
	}
	return out, nil
}

// Unverified reports whether blocks may come from Core's files, which a
// block being written can be read from half done: its header hashes
// right, so the caller checks its merkle root too.
func (s DaemonSource) Unverified() bool { return s.Files != nil }

// OpenBlockFiles opens the daemon's block files for DaemonSource.Files:
// those in dir, or, for dir "", those getrpcinfo's log path points to
// when the daemon is on this host. It returns nil (fetch every block from
// the daemon) for dir "off", and when the files found are not there or
// not readable; a dir named but not readable is an error.
func OpenBlockFiles(ctx context.Context, dc *daemon.Client, dir string, net *chain.Network, log *slog.Logger) (*blockfiles.Reader, error) {
	if dir == "off" {
		return nil, nil
	}
	auto := dir == ""
	if auto {
		logPath, err := dc.LocalLogPath(ctx)
		if err != nil || logPath == "" {
			log.Debug("daemon's block files not found; fetching blocks from the daemon", "err", err)
			return nil, nil
		}
		dir = filepath.Join(filepath.Dir(logPath), "blocks")
	}
	r, err := blockfiles.Open(dir, net.Params.Net, net.Genesis)
	switch {
	case err != nil && auto:
		log.Info("daemon's block files not readable; fetching blocks from the daemon (set DAEMON_BLOCKS_DIR if Core runs with -blocksdir)",
			"dir", dir, "err", err)
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("DAEMON_BLOCKS_DIR: %w", err)
	}
	log.Info("reading blocks from the daemon's block files", "dir", dir)
	return r, nil
}
