package query

import (
	"testing"

	"github.com/btcsuite/btcd/chainhash/v2"
)

// TestStatusSpecVector is spec §12.5.
func TestStatusSpecVector(t *testing.T) {
	entry := func(s string, h int32) HistoryEntry {
		id, err := chainhash.NewHashFromStr(s)
		if err != nil {
			t.Fatal(err)
		}
		return HistoryEntry{TxID: *id, Height: h}
	}
	hist := []HistoryEntry{
		entry("a6c9c361bd0bc536d6a22648efbf8f9b200e425ef6c3a7a9669dc444c532a347", 2472),
		entry("9c42f84b2fcdaff676ba25d9d4941741cc0d1a01cce0c23fdc4c0b2afa38431c", 2473),
		entry("770f2d4371b3fabb902dd9a103e2dd005fcd3971181078fca4a2a1d6ff127b30", 2473),
		entry("80b19848aed792565ab7c5a79b7c2a00fbf985741579396ebe0ab6098e607311", 0),
		entry("e02a1dadfa83b996b24175df807b271ea5d02937ef5b35c195fac1e1bdc3198f", 0),
		entry("bb4c8ab438c13b89ca80d1d5bee25b0b6b7f55673f4d801998ba97db161d9e85", -1),
	}
	got, ok := Status(hist)
	if !ok || got != "78e96c6562cafa71c115503b9411fdfdc595a45031e2ab76ff75162fe1b0590d" {
		t.Errorf("status %q %v", got, ok)
	}
	if _, ok := Status(nil); ok {
		t.Error("empty history has a status")
	}
}
