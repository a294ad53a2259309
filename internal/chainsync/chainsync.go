// Package chainsync brings the index to the daemon's tip and keeps it
// there: a fetch → parse → apply pipeline with blocks prefetched ahead of
// one writer, large batches during initial sync and a commit per block at
// the tip, and reorgs handled by disconnecting back to the fork with the
// index's undo records.
package chainsync

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/btcsuite/btcd/chainhash/v2"
	"golang.org/x/sync/errgroup"

	"amber/internal/chain"
	"amber/internal/index"
	"amber/internal/merkle"
)

// Source is where blocks come from: the daemon, or a file of raw blocks.
type Source interface {
	// BestBlock returns the height and hash of the source's tip.
	BestBlock(ctx context.Context) (int32, chainhash.Hash, error)
	// BlockHashes returns the hashes of count blocks from start.
	BlockHashes(ctx context.Context, start int32, count int) ([]chainhash.Hash, error)
	// RawBlocks returns the serialized blocks with the given hashes.
	RawBlocks(ctx context.Context, hashes []chainhash.Hash) ([][]byte, error)
}

// unverified is a Source whose blocks may be torn (read while being
// written): the syncer checks each one's merkle root as well as its hash.
type unverified interface{ Unverified() bool }

// Options tune a Syncer.
type Options struct {
	// BatchBytes is the writer size (Writer.Size) at which a catch-up
	// commits.
	BatchBytes int
	// TipDistance: a run of fewer new blocks than this is following the
	// tip, and commits each block durably; a longer one is catching up,
	// and commits by BatchBytes and durably once at its end.
	TipDistance int32
	// FetchChunk is the most blocks one fetch request asks for; the
	// first asks for at most 50, until the blocks' size is known.
	FetchChunk int
	// ChunkBytes is the raw block bytes a fetch aims at: chunks shrink
	// below FetchChunk blocks when blocks are large, so that the blocks
	// held ahead of the writer (Prefetch chunks, parsed) stay bounded in
	// bytes on mainnet's 1-4 MB blocks as on small test blocks.
	ChunkBytes int
	// Prefetch is how many chunks may wait ahead of the writer.
	Prefetch int
	// Workers parse blocks in parallel.
	Workers int
	// Logger receives progress and reorg lines.
	Logger *slog.Logger
	// Progress, when set, is called after every commit.
	Progress func(Progress)
	// OnCommit, when set, is called after every commit with the new tip
	// and, with CollectTouched, what the committed blocks touched.
	OnCommit func(index.Tip, *index.Touched)
	// Wake, when set, makes Follow poll at once (a ZMQ block
	// announcement) instead of waiting for the next tick.
	Wake <-chan struct{}
	// CollectTouched records the scripts and outpoints each commit
	// touched, for notifications; bulk syncs leave it off.
	CollectTouched bool
}

// Progress describes how far a Syncer has come; counts are totals over
// the Syncer's life.
type Progress struct {
	Height    int32
	Target    int32
	Blocks    int // blocks applied by this sync
	Txs       uint64
	Elapsed   time.Duration
	Reorgs    int
	Committed bool
}

// Syncer moves an index to the source's tip.
type Syncer struct {
	ix      *index.Index
	src     Source
	opts    Options
	logger  *slog.Logger
	prog    Progress // touched only by the goroutine running a sync
	started time.Time
	behind  atomic.Int64 // the source's height while below our tip, else -1
}

// New returns a Syncer; zero options get defaults suited to 2 to 8 cores.
func New(ix *index.Index, src Source, opts Options) *Syncer {
	if opts.BatchBytes <= 0 {
		opts.BatchBytes = 64 << 20
	}
	if opts.TipDistance <= 0 {
		opts.TipDistance = 6
	}
	if opts.FetchChunk <= 0 {
		// Early mainnet blocks are a few hundred bytes: fetched 50 at a
		// time, a sync of them waited on round trips.
		opts.FetchChunk = 500
	}
	if opts.Prefetch <= 0 {
		opts.Prefetch = 4
	}
	if opts.ChunkBytes <= 0 {
		opts.ChunkBytes = 8 << 20
	}
	if opts.Workers <= 0 {
		opts.Workers = runtime.GOMAXPROCS(0)
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Syncer{ix: ix, src: src, opts: opts, logger: opts.Logger, started: time.Now()}
	s.behind.Store(-1)
	return s
}

// firstChunk is the most blocks the first fetch of a sync asks for:
// 50 of mainnet's 1-4 MB blocks are already 50-200 MB. Later fetches ask
// for at most twice as many as the one before: indexing waits for the
// first chunks, and a small chunk arrives sooner.
const firstChunk = 50

// splitBytes is the smallest batch a catch-up commits early for the
// final commit to stay small (see run); below it commits cost more than
// they save.
const splitBytes = 1 << 20

// chunk is a run of consecutive parsed blocks, in order.
type chunk struct {
	start  int32
	blocks []*chain.Block
	bytes  int // raw bytes of the blocks
	err    error
}

// SyncToTip applies blocks until the index is at the source's tip, and
// returns that tip. On ctx cancellation it commits what it has applied and
// returns ctx's error.
func (s *Syncer) SyncToTip(ctx context.Context) (index.Tip, error) {
	started := s.started
	prog := &s.prog
	for {
		target, _, err := s.src.BestBlock(ctx)
		if err != nil {
			return s.ix.Tip(), fmt.Errorf("chainsync: read source tip: %w", err)
		}
		tip := s.ix.Tip()
		s.noteBehind(target, tip.Height)
		if tip.Height >= target {
			// Same height may still be a different block.
			reorged, err := s.checkTipOnChain(ctx, prog, target)
			if err != nil {
				return s.ix.Tip(), err
			}
			if !reorged {
				return s.ix.Tip(), nil
			}
			continue
		}
		prog.Target = target
		err = s.run(ctx, tip.Height+1, target, prog, started)
		if errors.Is(err, index.ErrPrevMismatch) {
			if err := s.reorg(ctx, prog); err != nil {
				return s.ix.Tip(), err
			}
			continue
		}
		if err != nil {
			return s.ix.Tip(), err
		}
	}
}

// run fetches and applies blocks from..to. Catching up (many blocks), it
// commits by batch size without waiting for the disk and durably at the
// end; following (a few blocks), it commits each block durably, so
// clients are told of each. Either way each commit holds whole blocks
// with the tip they reach, so a crash leaves the last committed tip.
//
// NOTE: per-block durable commits all through the last REORG_LIMIT
// blocks of a catch-up made them the slowest part of a sync (about 160
// blocks/s against Bitcoin Core); nothing needs them there: a reorg is
// handled the same from any committed tip.
func (s *Syncer) run(parent context.Context, from, to int32, prog *Progress, started time.Time) error {
	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	chunks := make(chan chunk, s.opts.Prefetch)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		defer close(chunks)
		size := min(s.opts.FetchChunk, firstChunk)
		for start := from; start <= to; {
			n := min(size, int(to-start+1))
			c := s.fetch(gctx, start, n)
			start += int32(n)
			if c.bytes > 0 {
				// The next chunk's size from these blocks' average.
				size = min(s.opts.FetchChunk, 2*n, max(1, int(int64(s.opts.ChunkBytes)*int64(len(c.blocks))/int64(c.bytes))))
			}
			select {
			case chunks <- c:
			case <-gctx.Done():
				return nil
			}
			if c.err != nil {
				return nil
			}
		}
		return nil
	})

	var (
		applyErr error
		broken   bool // the batch holds part of a block: discard it
	)
	following := to-from+1 < s.opts.TipDistance
	batchFrom := from // the first block of w's batch
	w, err := s.newBulkWriter(to)
	if err != nil {
		cancel()
		_ = g.Wait()
		return err
	}
	commit := func(sync bool) error {
		err := w.Commit(sync)
		prog.Height = w.Tip().Height
		prog.Elapsed = time.Since(started)
		prog.Committed = true
		if err == nil {
			if s.opts.OnCommit != nil {
				s.opts.OnCommit(w.Tip(), w.Touched())
			}
			if s.opts.Progress != nil {
				s.opts.Progress(*prog)
			}
		}
		return err
	}
loop:
	for c := range chunks {
		if c.err != nil {
			applyErr = c.err
			break
		}
		for _, b := range c.blocks {
			if err := w.Connect(b); err != nil {
				applyErr = err
				broken = !errors.Is(err, index.ErrPrevMismatch)
				break loop
			}
			prog.Blocks++
			prog.Txs += uint64(len(b.Txs))
			h := w.Tip().Height
			// Catching up with nobody to notify, a batch commits in the
			// background while the next one is indexed. It also commits
			// once it holds as many blocks as remain: the batches halve
			// towards the target, so the final commit, which nothing
			// overlaps, is small instead of a whole CACHE_MB batch.
			full := w.Size() >= s.opts.BatchBytes ||
				h-batchFrom+1 >= to-h && w.Size() >= min(s.opts.BatchBytes, splitBytes)
			if !following && !s.opts.CollectTouched && full && h < to {
				next, err := w.CommitNext(false)
				if err != nil {
					applyErr = err
					w = nil
					break loop
				}
				prog.Height, prog.Elapsed, prog.Committed = h, time.Since(started), true
				if s.opts.OnCommit != nil {
					s.opts.OnCommit(w.Tip(), w.Touched())
				}
				if s.opts.Progress != nil {
					s.opts.Progress(*prog)
				}
				w, batchFrom = next, h+1
			} else if (following || w.Size() >= s.opts.BatchBytes) && h < to {
				if err := commit(following); err != nil {
					applyErr = err
					break loop
				}
				if w, err = s.newBulkWriter(to); err != nil {
					return err
				}
				batchFrom = h + 1
			} else if s.opts.Progress != nil && prog.Blocks%100 == 0 {
				p := *prog
				p.Height, p.Elapsed, p.Committed = h, time.Since(started), false
				s.opts.Progress(p)
			}
		}
		if parent.Err() != nil {
			break
		}
	}
	cancel()
	for range chunks {
	}
	_ = g.Wait()
	// Whatever was applied cleanly is committed, also on cancellation and
	// before handling a reorg; a batch holding part of a block is dropped.
	switch {
	case w == nil: // CommitNext failed and released the index
	case broken:
		w.Close()
	default:
		if err := commit(true); err != nil && applyErr == nil {
			applyErr = err
		}
	}
	if applyErr == nil && parent.Err() != nil {
		applyErr = parent.Err()
	}
	return applyErr
}

func (s *Syncer) newWriter() (*index.Writer, error) {
	return s.collect(s.ix.NewWriter())
}

// newBulkWriter is for run, which only connects blocks: a write-only
// batch costs much less per row than a readable one. target is the
// source's tip, below which blocks deep enough need no undo record.
func (s *Syncer) newBulkWriter(target int32) (*index.Writer, error) {
	w, err := s.collect(s.ix.NewBulkWriter())
	if err == nil {
		w.SetDaemonTip(target)
	}
	return w, err
}

func (s *Syncer) collect(w *index.Writer, err error) (*index.Writer, error) {
	if err == nil && s.opts.CollectTouched {
		w.CollectTouched()
	}
	return w, err
}

// fetch gets and parses count blocks from start, parsing in parallel.
func (s *Syncer) fetch(ctx context.Context, start int32, count int) chunk {
	c := chunk{start: start}
	hashes, err := s.src.BlockHashes(ctx, start, count)
	if err != nil {
		c.err = fmt.Errorf("chainsync: block hashes %d+%d: %w", start, count, err)
		return c
	}
	raws, err := s.src.RawBlocks(ctx, hashes)
	if err != nil {
		c.err = fmt.Errorf("chainsync: blocks %d+%d: %w", start, count, err)
		return c
	}
	c.blocks = make([]*chain.Block, len(raws))
	for _, raw := range raws {
		c.bytes += len(raw)
	}
	u, ok := s.src.(unverified)
	checkRoot := ok && u.Unverified()
	g := errgroup.Group{}
	g.SetLimit(s.opts.Workers)
	for i, raw := range raws {
		g.Go(func() error {
			b, err := s.ix.Network().ParseBlock(raw)
			if err != nil {
				return fmt.Errorf("chainsync: parse block %d: %w", start+int32(i), err)
			}
			if b.Hash != hashes[i] {
				return fmt.Errorf("chainsync: block %d: source sent %s for %s", start+int32(i), b.Hash, hashes[i])
			}
			if checkRoot {
				if err := checkMerkleRoot(b); err != nil {
					return fmt.Errorf("chainsync: block %d: %w", start+int32(i), err)
				}
			}
			c.blocks[i] = b
			return nil
		})
	}
	c.err = g.Wait()
	return c
}

// checkTipOnChain reports whether our chain still agrees with the
// source's at min(our tip, its tip), and reorgs when it does not. A
// source whose tip is below ours but on our chain (a daemon in initial
// block download, restarted with -reindex, or a failover target a few
// blocks behind) is only behind: nothing is disconnected.
func (s *Syncer) checkTipOnChain(ctx context.Context, prog *Progress, target int32) (bool, error) {
	tip := s.ix.Tip()
	at := min(tip.Height, target)
	if at < 0 {
		return false, nil
	}
	ours := tip.Hash
	if at < tip.Height {
		var err error
		if ours, err = s.ourHash(at); err != nil {
			return false, err
		}
	}
	h, ok, err := s.hashAt(ctx, at)
	if err != nil {
		return false, fmt.Errorf("chainsync: hash at %d: %w", at, err)
	}
	if !ok || h == ours {
		// The source shrank since it gave its tip, or agrees with us.
		return false, nil
	}
	return true, s.reorg(ctx, prog)
}

// divergesBelow reports whether the source's block at its tip, which is
// below ours, differs from the index's block at that height.
func (s *Syncer) divergesBelow(ctx context.Context) (bool, error) {
	best, _, err := s.src.BestBlock(ctx)
	if err != nil {
		return false, fmt.Errorf("chainsync: read source tip during reorg: %w", err)
	}
	if best < 0 {
		return false, nil
	}
	theirs, ok, err := s.hashAt(ctx, best)
	if err != nil || !ok {
		return false, err
	}
	ours, err := s.ourHash(best)
	if err != nil {
		return false, err
	}
	return theirs != ours, nil
}

// ourHash returns the hash of the index's block at height.
func (s *Syncer) ourHash(height int32) (chainhash.Hash, error) {
	hdr, err := s.ix.Header(height)
	if err != nil {
		return chainhash.Hash{}, fmt.Errorf("chainsync: %w", err)
	}
	return chainhash.DoubleHashH(hdr), nil
}

// noteBehind records whether the source's tip is below the index's and
// logs when that starts and ends.
func (s *Syncer) noteBehind(target, ours int32) {
	if target < ours {
		if s.behind.Swap(int64(target)) < 0 {
			s.logger.Warn("daemon is behind the index; waiting for it to catch up (not a reorg, nothing is disconnected)",
				"daemon_height", target, "index_height", ours)
		}
		return
	}
	if prev := s.behind.Swap(-1); prev >= 0 {
		s.logger.Info("daemon caught up with the index", "daemon_height", target, "index_height", ours)
	}
}

// Behind returns the source's height when it was below the index's tip
// at the last check, and ok false otherwise.
func (s *Syncer) Behind() (height int32, ok bool) {
	h := s.behind.Load()
	return int32(h), h >= 0
}

// hashAt returns the source's block hash at height, or ok false when the
// source's chain no longer reaches that height.
//
// NOTE: a daemon in the middle of a reorg (btcd disconnects and connects
// one block at a time, answering RPCs in between) may have a tip below
// the height it gave a moment ago; that is not an error, only a block
// of ours that is not (or not yet) in its chain.
func (s *Syncer) hashAt(ctx context.Context, height int32) (chainhash.Hash, bool, error) {
	hs, err := s.src.BlockHashes(ctx, height, 1)
	if err == nil {
		return hs[0], true, nil
	}
	if best, _, berr := s.src.BestBlock(ctx); berr == nil && best < height {
		return chainhash.Hash{}, false, nil
	}
	return chainhash.Hash{}, false, err
}

// reorg disconnects blocks until the index's tip is on the source's chain.
func (s *Syncer) reorg(ctx context.Context, prog *Progress) error {
	w, err := s.newWriter()
	if err != nil {
		return err
	}
	defer w.Close()
	old := w.Tip()
	for {
		t := w.Tip()
		h, ok, err := s.hashAt(ctx, t.Height)
		if err != nil {
			return fmt.Errorf("chainsync: hash at %d during reorg: %w", t.Height, err)
		}
		if ok && h == t.Hash {
			break
		}
		if !ok {
			// The source's chain ends below t: t goes only if the
			// source differs from us at its own tip.
			diverged, err := s.divergesBelow(ctx)
			if err != nil {
				return err
			}
			if !diverged {
				break
			}
		}
		if err := w.Disconnect(); err != nil {
			return fmt.Errorf("chainsync: reorg from %d (%s): %w", old.Height, old.Hash, err)
		}
	}
	fork := w.Tip()
	if fork == old {
		return nil
	}
	if err := w.Commit(true); err != nil {
		return err
	}
	if s.opts.OnCommit != nil {
		s.opts.OnCommit(fork, w.Touched())
	}
	prog.Reorgs++
	s.logger.Warn("chain reorganised", "height", old.Height, "block", old.Hash.String(),
		"fork_height", fork.Height, "depth", old.Height-fork.Height)
	return nil
}

// Rewind disconnects the top n blocks with their undo records, as a
// reorg would, and commits; the next SyncToTip connects them again. It
// tests reorg handling on a live node (amber rpc reorg).
func (s *Syncer) Rewind(n int) (index.Tip, error) {
	w, err := s.newWriter()
	if err != nil {
		return index.Tip{}, err
	}
	defer w.Close()
	old := w.Tip()
	for i := 0; i < n; i++ {
		if err := w.Disconnect(); err != nil {
			return index.Tip{}, fmt.Errorf("chainsync: rewind %d blocks from %d: %w", n, old.Height, err)
		}
	}
	tip := w.Tip()
	if err := w.Commit(true); err != nil {
		return index.Tip{}, err
	}
	if s.opts.OnCommit != nil {
		s.opts.OnCommit(tip, w.Touched())
	}
	s.logger.Warn("rewound the index", "from_height", old.Height, "to_height", tip.Height, "block", tip.Hash.String())
	return tip, nil
}

// Follow keeps the index at the source's tip, polling every interval, until
// ctx ends. onTip is called after each change of tip.
func (s *Syncer) Follow(ctx context.Context, interval time.Duration, onTip func(index.Tip)) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	last := s.ix.Tip()
	for {
		tip, err := s.SyncToTip(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return err
		}
		if tip != last {
			last = tip
			if onTip != nil {
				onTip(tip)
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-s.opts.Wake:
		}
	}
}

// checkMerkleRoot checks that b's transactions are those its header
// commits to.
func checkMerkleRoot(b *chain.Block) error {
	ids := make([]chainhash.Hash, len(b.Txs))
	for i := range b.Txs {
		ids[i] = b.Txs[i].TxID
	}
	root, err := merkle.Root(ids)
	if err != nil {
		return err
	}
	if root != b.Header.MerkleRoot {
		return fmt.Errorf("block %s: its transactions' merkle root %s is not its header's %s", b.Hash, root, b.Header.MerkleRoot)
	}
	return nil
}
