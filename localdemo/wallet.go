package localdemo

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math"
	mrand "math/rand/v2"
	"os"
	"path/filepath"

	"github.com/btcsuite/btcd/address/v2"
	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/chainhash/v2"
	"github.com/btcsuite/btcd/txscript/v2"
	"github.com/btcsuite/btcd/wire/v2"
)

// coinbaseMaturity is the depth at which a coinbase output may be spent.
const coinbaseMaturity = 100

// wallet is the demo's miner: one P2WPKH key that receives every block
// reward and spends matured rewards on a few payments per block, to new
// P2WPKH and P2PKH addresses and sometimes back to an earlier one.
type wallet struct {
	key        *btcec.PrivateKey
	miningAddr address.Address
	pkScript   []byte
	seed       []byte
	rng        *mrand.Rand
	payees     []address.Address
}

// newWallet loads the seed in dir (making it on the first run), so a kept
// DEMO_DIR keeps its coins.
func newWallet(dir string) (*wallet, error) {
	path := filepath.Join(dir, "seed")
	seed, err := os.ReadFile(path)
	if err != nil {
		seed = []byte(randomHex(32))
		if err := os.WriteFile(path, seed, 0o600); err != nil {
			return nil, fmt.Errorf("demo: write %s: %w", path, err)
		}
	}
	w := &wallet{seed: seed}
	w.key = w.derive(0)
	w.miningAddr, err = address.NewAddressWitnessPubKeyHash(address.Hash160(w.key.PubKey().SerializeCompressed()), params)
	if err != nil {
		return nil, fmt.Errorf("demo: mining address: %w", err)
	}
	if w.pkScript, err = txscript.PayToAddrScript(w.miningAddr); err != nil {
		return nil, fmt.Errorf("demo: mining script: %w", err)
	}
	s := sha256.Sum256(append([]byte("rng"), seed...))
	w.rng = mrand.New(mrand.NewPCG(binary.LittleEndian.Uint64(s[:8]), binary.LittleEndian.Uint64(s[8:16])))
	return w, nil
}

// derive returns the i-th key of the seed.
func (w *wallet) derive(i uint32) *btcec.PrivateKey {
	var idx [4]byte
	binary.BigEndian.PutUint32(idx[:], i)
	s := sha256.Sum256(append(append([]byte{}, w.seed...), idx[:]...))
	k, _ := btcec.PrivKeyFromBytes(s[:])
	return k
}

// payee returns an address to pay: mostly a new one, sometimes one paid
// before.
func (w *wallet) payee() (address.Address, error) {
	if len(w.payees) > 3 && w.rng.IntN(3) == 0 {
		return w.payees[w.rng.IntN(len(w.payees))], nil
	}
	k := w.derive(uint32(1 + len(w.payees)))
	hash := address.Hash160(k.PubKey().SerializeCompressed())
	var a address.Address
	var err error
	if w.rng.IntN(3) == 0 {
		a, err = address.NewAddressPubKeyHash(hash, params)
	} else {
		a, err = address.NewAddressWitnessPubKeyHash(hash, params)
	}
	if err != nil {
		return nil, fmt.Errorf("demo: payee address: %w", err)
	}
	w.payees = append(w.payees, a)
	return a, nil
}

// mine sends a payment transaction when a block reward has matured, then
// mines one block.
func (w *wallet) mine(ctx context.Context, node *btcd) error {
	h, err := node.height(ctx)
	if err != nil {
		return err
	}
	if h >= coinbaseMaturity {
		if err := w.pay(ctx, node, h+1-coinbaseMaturity); err != nil {
			return err
		}
	}
	return node.generate(ctx, 1)
}

// pay spends the reward of the block at height from on two to four
// payments and change.
func (w *wallet) pay(ctx context.Context, node *btcd, from int) error {
	var hash string
	if err := node.callInto(ctx, &hash, "getblockhash", from); err != nil {
		return err
	}
	var block struct {
		Tx []string `json:"tx"`
	}
	if err := node.callInto(ctx, &block, "getblock", hash); err != nil {
		return err
	}
	var cb struct {
		Vout []struct {
			Value        float64 `json:"value"`
			ScriptPubKey struct {
				Hex string `json:"hex"`
			} `json:"scriptPubKey"`
		} `json:"vout"`
	}
	if err := node.callInto(ctx, &cb, "getrawtransaction", block.Tx[0], 1); err != nil {
		return err
	}
	if len(cb.Vout) == 0 || cb.Vout[0].ScriptPubKey.Hex != hex.EncodeToString(w.pkScript) {
		return nil // not ours (a chain from another seed)
	}
	value := int64(math.Round(cb.Vout[0].Value * 1e8))
	txid, err := chainhash.NewHashFromStr(block.Tx[0])
	if err != nil {
		return fmt.Errorf("demo: coinbase txid: %w", err)
	}

	tx := wire.NewMsgTx(2)
	tx.AddTxIn(wire.NewTxIn(wire.NewOutPoint(txid, 0), nil, nil))
	left := value - 2000 // fee
	for range 2 + w.rng.IntN(3) {
		a, err := w.payee()
		if err != nil {
			return err
		}
		script, err := txscript.PayToAddrScript(a)
		if err != nil {
			return fmt.Errorf("demo: payee script: %w", err)
		}
		amount := (left / 10) * int64(1+w.rng.IntN(4)) / 4
		tx.AddTxOut(wire.NewTxOut(amount, script))
		left -= amount
	}
	tx.AddTxOut(wire.NewTxOut(left, w.pkScript))

	fetcher := txscript.NewCannedPrevOutputFetcher(w.pkScript, value)
	wit, err := txscript.WitnessSignature(tx, txscript.NewTxSigHashes(tx, fetcher), 0, value, w.pkScript, txscript.SigHashAll, w.key, true)
	if err != nil {
		return fmt.Errorf("demo: sign: %w", err)
	}
	tx.TxIn[0].Witness = wit
	var buf bytes.Buffer
	if err := tx.Serialize(&buf); err != nil {
		return fmt.Errorf("demo: encode tx: %w", err)
	}
	_, err = node.call(ctx, "sendrawtransaction", hex.EncodeToString(buf.Bytes()))
	return err
}
