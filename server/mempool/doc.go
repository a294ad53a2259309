// Package mempool is the server's view of the daemon's mempool, per script
// (hashX): what the Electrum session code needs for script statuses,
// get_history and get_mempool, the unconfirmed part of get_balance,
// listunspent, outpoint subscriptions, the fee histogram and
// notifications (PROTOCOL.md 4.13–4.19, 4.26, 5.3, 5.4, 5.8, 5.10).
//
// # Refresh
//
// Refresh brings the view to the daemon's mempool. It asks the daemon for
// its best block, its mempool txids and its best block again, and goes on
// only when both hashes equal the tip of the index (Outputs.Tip);
// otherwise it returns ErrNotSynced and changes nothing, so the caller
// syncs the index and calls again. This is ElectrumX's rule that a
// mempool refresh is applied only at the height the index has reached
// (5.4), which keeps a transaction from vanishing from both the mempool
// and the index, or being in both, in a consistent reading (5.10, 5.11).
//
// Transactions not held yet are fetched in batches (Options.FetchChunk
// per request, Options.FetchConcurrency requests at once); one the daemon
// no longer knows (mined or evicted meanwhile) is skipped. Transactions
// that left the daemon's mempool leave the view.
//
// Each input is resolved to the output it spends: an output of another
// transaction in the view (an unconfirmed parent) or a confirmed unspent
// output found with Outputs.Output. Candidates are resolved parents
// first, so a whole chain of unconfirmed transactions enters in one
// refresh, in whatever order the daemon lists it. A transaction whose
// inputs cannot all be resolved (its parent arrives later, or was just
// mined into a block the index has not reached) is held aside, unseen by
// queries, and resolved again on every refresh for as long as the daemon
// lists it; it is not fetched again.
//
// When a parent leaves the view its descendants are resolved again, and
// when the index tip changes every held transaction is: a parent that was
// mined turns its child's height from -1 to 0, and a reorganisation that
// returns a parent to the mempool turns it back to -1. Inputs already
// resolved to confirmed outputs are re-read from the index only when
// their parent has left the view, so a new block costs index reads only
// for the transactions it confirmed.
//
// Refresh returns what changed (Touched): the scripts whose mempool
// history, heights, fees, balance or unspent outputs changed, and the
// outpoints created or spent by the transactions that entered, left or
// changed height. Scripts of transactions that did not change are never
// reported. Unlike ElectrumX, a child whose height moves from -1 to 0
// because its parent was mined is reported too, so the session need not
// recompute every mempool-dependent status after a block to catch it
// (it may still do so, as 5.10 describes).
//
// # Queries
//
// Every query reads one consistent state: Refresh computes its changes
// aside and applies them under a write lock at once. A request that needs
// several queries can compare Generation before and after, and Tip tells
// which index tip the view belongs to, so a request can be answered from
// one index tip and one mempool generation (5.11).
//
// A transaction's height is 0 when every input spends a confirmed output
// and -1 when any input spends an output of another mempool transaction,
// whatever scripts those inputs belong to (5.3). History returns a
// script's mempool transactions in the canonical order of protocol 1.6,
// sorted by (-height, txid in display byte order); the spec and
// ElectrumX 1.19 and later use that order for every protocol version
// (5.3, 10.2), so there is no other ordering. Fees are input values minus
// output values, never below zero; sizes are virtual sizes (5.4).
//
// Balance is the spec's unconfirmed delta (4.15): for every mempool
// transaction touching the script, plus its outputs paying the script,
// minus its inputs spending the script's outputs, confirmed or not; it can
// be negative. UTXOs lists mempool outputs paying the script that no
// other mempool transaction spends; SpentInMempool and Spender tell
// listunspent and outpoint subscriptions which outputs the mempool spends.
//
// # Fee histogram
//
// FeeHistogram returns ElectrumX's compact histogram (5.8): fee rates
// rounded down to 0.1 sat/vB, buckets of at least 30,000 vB growing by
// 10% each, a bucket closed early before a lump of more than twice the
// bin size, and the residual after the last bucket dropped, as ElectrumX
// does. It is computed after the first successful Refresh and again at
// most every Options.HistogramInterval (120 s by default, ElectrumX's
// MEMPOOL_HISTOGRAM_REFRESH_SECS for Bitcoin); before the first
// computation it is empty.
package mempool
