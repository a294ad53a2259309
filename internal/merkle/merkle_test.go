package merkle

import (
	"testing"

	"github.com/btcsuite/btcd/chainhash/v2"
)

func h(t *testing.T, s string) chainhash.Hash {
	t.Helper()
	x, err := chainhash.NewHashFromStr(s)
	if err != nil {
		t.Fatal(err)
	}
	return *x
}

// TestCheckpointProof is spec §12.2: the header of mainnet block 5 proven
// against the root of blocks 0 to 8.
func TestCheckpointProof(t *testing.T) {
	hashes := []string{
		"000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f",
		"00000000839a8e6886ab5951d76f411475428afc90947ee320161bbf18eb6048",
		"000000006a625f06636b8bb6ac7b960a8d03705d1ace08b1a19da3fdcc99ddbd",
		"0000000082b5015589a3fdf2d4baff403e6f0be035a5d9742c1cae6295464449",
		"000000004ebadb55ee9096c9a2f8880e09da59c0d68b1c228da88e48844a1485",
		"000000009b7262315dbf071787ad3656097b892abffd1f95a1a022f896f533fc",
		"000000003031a0e73735690c5a1ff2a4be82553b2a12b776fbd3a215dc8f778d",
		"0000000071966c2b1d065fd446b1e485b2c9d9594acd2007ccbd5441cfc89444",
		"00000000408c48f847aa786c2268fc3e6ec2af68e8468a34a28c61b7f1de0dc6",
	}
	var leaves []chainhash.Hash
	for _, s := range hashes {
		leaves = append(leaves, h(t, s))
	}
	branch, root, err := Branch(leaves, 5)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"000000004ebadb55ee9096c9a2f8880e09da59c0d68b1c228da88e48844a1485",
		"96cbbc84783888e4cc971ae8acf86dd3c1a419370336bb3c634c97695a8c5ac9",
		"965ac94082cebbcffe458075651e9cc33ce703ab0115c72d9e8b1a9906b2b636",
		"89e5daa6950b895190716dd26054432b564ccdc2868188ba1da76de8e1dc7591",
	}
	if len(branch) != len(want) {
		t.Fatalf("branch has %d elements, want %d", len(branch), len(want))
	}
	for i := range want {
		if branch[i].String() != want[i] {
			t.Errorf("branch[%d] = %s, want %s", i, branch[i], want[i])
		}
	}
	if root.String() != "e347b1c43fd9b5415bf0d92708db8284b78daf4d0e24f9c3405f45feb85e25db" {
		t.Errorf("root %s", root)
	}
	if RootFromBranch(leaves[5], branch, 5) != root {
		t.Error("branch does not verify")
	}
}

// TestTxBranches is spec §12.6: regtest blocks of 1, 2 and 3 transactions,
// including the odd level where the last tx is its own sibling.
func TestTxBranches(t *testing.T) {
	cb := h(t, "9b977e4cc0b2eb44cb5ea2adb30bf6eae892c9a838111031cb49c97d8ad57309")
	a := h(t, "9c42f84b2fcdaff676ba25d9d4941741cc0d1a01cce0c23fdc4c0b2afa38431c")
	b := h(t, "770f2d4371b3fabb902dd9a103e2dd005fcd3971181078fca4a2a1d6ff127b30")
	leaves := []chainhash.Hash{cb, a, b}
	cases := []struct {
		index int
		want  []string
	}{
		{1, []string{cb.String(), "e7a2891bd8f96488681a596f619de4d88a22d3b08a8aee3b44bbdd913e3e3562"}},
		{2, []string{b.String(), "ee43317b1b79a9a6b101df711a26d12a88b1419f63db15161a9fdb587fabae63"}},
	}
	for _, c := range cases {
		branch, root, err := Branch(leaves, c.index)
		if err != nil {
			t.Fatal(err)
		}
		for i := range c.want {
			if branch[i].String() != c.want[i] {
				t.Errorf("tx %d branch[%d] = %s, want %s", c.index, i, branch[i], c.want[i])
			}
		}
		if root.String() != "132994b613a584d0a435ce23196e391c064333f94b537d38b8cf8da2e614a67a" {
			t.Errorf("tx %d root %s", c.index, root)
		}
		if RootFromBranch(leaves[c.index], branch, c.index) != root {
			t.Errorf("tx %d branch does not verify", c.index)
		}
	}
	two := []chainhash.Hash{h(t, "5a4ae2a3c22bd791622edb41bd007b39e1f3bcdc8371717c71dbcf630aa8ca6f"), h(t, "a6c9c361bd0bc536d6a22648efbf8f9b200e425ef6c3a7a9669dc444c532a347")}
	branch, root, _ := Branch(two, 1)
	if len(branch) != 1 || branch[0] != two[0] || root.String() != "75c2209449293f3ef4214353bdfa1520fd0c4a6bdf3d19d24720c277be250e5c" {
		t.Errorf("2-tx block: branch %v root %s", branch, root)
	}
	one := []chainhash.Hash{cb}
	branch, root, _ = Branch(one, 0)
	if len(branch) != 0 || root != cb {
		t.Errorf("1-tx block: branch %v root %s", branch, root)
	}
	if _, _, err := Branch(leaves, 3); err == nil {
		t.Error("index past the leaves accepted")
	}
	if _, err := Root(nil); err == nil {
		t.Error("root of nothing accepted")
	}
}

// TestEveryLeafVerifies checks trees of every size up to 70.
func TestEveryLeafVerifies(t *testing.T) {
	var leaves []chainhash.Hash
	for n := 1; n <= 70; n++ {
		leaves = append(leaves, chainhash.DoubleHashH([]byte{byte(n)}))
		for i := range leaves {
			branch, root, err := Branch(leaves, i)
			if err != nil || RootFromBranch(leaves[i], branch, i) != root {
				t.Fatalf("n=%d i=%d does not verify (%v)", n, i, err)
			}
		}
	}
}
