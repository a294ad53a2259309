package chaingen

import (
	"fmt"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcec/v2/schnorr"
	"github.com/btcsuite/btcd/txscript/v2"
	"github.com/btcsuite/btcd/wire/v2"

	"amber/internal/testenv"
)

// signer signs inputs spending wallet scripts, as testenv's Wallet.Sign
// does but about twice as fast: it keeps each script's public key and
// tweaked taproot key instead of deriving them for every input, and it
// leaves checking the scripts to the node the chain is submitted to
// (TestInputsVerify runs btcd's script engine over a whole chain).
type signer struct {
	pubKeys map[*testenv.Script][]byte
	tapKeys map[*testenv.Script]*btcec.PrivateKey
}

func newSigner() *signer {
	return &signer{pubKeys: map[*testenv.Script][]byte{}, tapKeys: map[*testenv.Script]*btcec.PrivateKey{}}
}

// prevOuts is a txscript.PrevOutputFetcher over the coins a transaction
// spends, in input order.
type prevOuts []*coin

// FetchPrevOutput returns the output op names, or nil.
func (p prevOuts) FetchPrevOutput(op wire.OutPoint) *wire.TxOut {
	for _, c := range p {
		if c.utxo.OutPoint == op {
			return c.utxo.TxOut()
		}
	}
	return nil
}

// sign fills in every input's signature script and witness; ins[i] is
// the coin input i spends. Inputs are signed with SIGHASH_ALL, taproot
// ones with SIGHASH_DEFAULT.
func (s *signer) sign(tx *wire.MsgTx, ins []*coin) error {
	fetcher := prevOuts(ins)
	sigHashes := txscript.NewTxSigHashes(tx, fetcher)
	for i, c := range ins {
		if err := s.signInput(tx, i, c, sigHashes, fetcher); err != nil {
			return fmt.Errorf("chaingen: sign input %d (%v): %w", i, c.utxo.Script.Kind, err)
		}
	}
	return nil
}

// signInput signs input i.
func (s *signer) signInput(tx *wire.MsgTx, i int, c *coin, sigHashes *txscript.TxSigHashes, fetcher prevOuts) error {
	sc := c.utxo.Script
	in := tx.TxIn[i]
	key := sc.Keys[0]
	switch sc.Kind {
	case testenv.P2PK, testenv.P2PKH:
		sig, err := txscript.RawTxInSignature(tx, i, sc.PkScript, txscript.SigHashAll, key)
		if err != nil {
			return err
		}
		b := txscript.NewScriptBuilder().AddData(sig)
		if sc.Kind == testenv.P2PKH {
			b.AddData(s.pubKey(sc))
		}
		in.SignatureScript, err = b.Script()
		return err
	case testenv.P2WPKH, testenv.P2SHP2WPKH:
		// The script code comes from the witness program: the output
		// script itself or, nested, the redeem script.
		program := sc.PkScript
		if sc.Kind == testenv.P2SHP2WPKH {
			program = sc.RedeemScript
			var err error
			if in.SignatureScript, err = txscript.NewScriptBuilder().AddData(sc.RedeemScript).Script(); err != nil {
				return err
			}
		}
		sig, err := txscript.RawTxInWitnessSignature(tx, sigHashes, i, c.utxo.Value, program, txscript.SigHashAll, key)
		if err != nil {
			return err
		}
		in.Witness = wire.TxWitness{sig, s.pubKey(sc)}
		return nil
	case testenv.P2WSHMultisig:
		// CHECKMULTISIG pops one item too many: an empty element first,
		// then the first two keys' signatures in script order.
		witness := wire.TxWitness{nil}
		for _, k := range sc.Keys[:2] {
			sig, err := txscript.RawTxInWitnessSignature(tx, sigHashes, i, c.utxo.Value, sc.WitnessScript, txscript.SigHashAll, k)
			if err != nil {
				return err
			}
			witness = append(witness, sig)
		}
		in.Witness = append(witness, sc.WitnessScript)
		return nil
	case testenv.P2TR:
		hash, err := txscript.CalcTaprootSignatureHash(sigHashes, txscript.SigHashDefault, tx, i, fetcher)
		if err != nil {
			return err
		}
		sig, err := schnorr.Sign(s.tapKey(sc), hash, schnorr.FastSign())
		if err != nil {
			return err
		}
		in.Witness = wire.TxWitness{sig.Serialize()}
		return nil
	}
	return fmt.Errorf("unknown script kind %v", sc.Kind)
}

// pubKey returns the script's compressed public key.
func (s *signer) pubKey(sc *testenv.Script) []byte {
	pub, ok := s.pubKeys[sc]
	if !ok {
		pub = sc.Keys[0].PubKey().SerializeCompressed()
		s.pubKeys[sc] = pub
	}
	return pub
}

// tapKey returns the BIP 86 tweaked private key of a taproot script: the
// output key commits to no script tree.
func (s *signer) tapKey(sc *testenv.Script) *btcec.PrivateKey {
	k, ok := s.tapKeys[sc]
	if !ok {
		k = txscript.TweakTaprootPrivKey(*sc.Keys[0], nil)
		s.tapKeys[sc] = k
	}
	return k
}
