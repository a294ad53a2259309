package query

import (
	"bytes"
	"testing"

	"amber/internal/chain"
	"amber/internal/index"
	"amber/internal/store"
)

// memIndex is an empty regtest index in memory, closed with the test,
// and the parsed genesis block to connect first.
func memIndex(t *testing.T) (*index.Index, *chain.Block) {
	t.Helper()
	net, _ := chain.Lookup("Bitcoin", "regtest")
	db, err := store.Open("", store.Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	ix, err := index.Open(db, net, index.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var gbuf bytes.Buffer
	if err := net.Params.GenesisBlock.Serialize(&gbuf); err != nil {
		t.Fatal(err)
	}
	genesis, err := chain.ParseBlock(gbuf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	return ix, genesis
}
