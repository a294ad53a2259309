package query

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"

	"github.com/btcsuite/btcd/chainhash/v2"
)

// HistoryEntry is one transaction in a script's history as clients see
// it: confirmed ones with their block height, mempool ones with height 0
// (all inputs confirmed) or -1 (some input unconfirmed) and a fee.
type HistoryEntry struct {
	TxID   chainhash.Hash
	Height int32
	Fee    int64 // mempool entries only
}

// Status is the Electrum status of a history (spec §5.3): the hex SHA-256
// of "txid:height:" for every entry, confirmed first in chain order, then
// mempool in canonical order. An empty history has no status ("", false),
// which goes on the wire as null.
func Status(history []HistoryEntry) (string, bool) {
	if len(history) == 0 {
		return "", false
	}
	h := sha256.New()
	buf := make([]byte, 0, 64+1+11+1)
	for _, e := range history {
		buf = append(buf[:0], e.TxID.String()...)
		buf = append(buf, ':')
		buf = strconv.AppendInt(buf, int64(e.Height), 10)
		buf = append(buf, ':')
		h.Write(buf)
	}
	return hex.EncodeToString(h.Sum(nil)), true
}
