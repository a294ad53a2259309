package testenv

import (
	"errors"
	"fmt"
	"slices"

	"github.com/btcsuite/btcd/txscript/v2"
	"github.com/btcsuite/btcd/wire/v2"
)

const (
	// DefaultFeeRate is the fee rate BuildTx uses when none is given, in
	// satoshis per virtual byte; btcd relays from 1.
	DefaultFeeRate = 2
	// DustLimit is the smallest change output BuildTx creates; smaller
	// change is left to the fee.
	DustLimit = 1000
)

// ErrInsufficientFunds is returned by BuildTx when the wallet's spendable
// outputs cannot pay for the outputs and the fee.
var ErrInsufficientFunds = errors.New("testenv: insufficient funds")

// TxRequest describes a transaction for Wallet.BuildTx.
type TxRequest struct {
	// Outputs are paid in order; the change output, if any, comes last.
	Outputs []*wire.TxOut
	// Inputs are spent first, in order. When they do not cover the
	// outputs and the fee, spendable wallet outputs are added, oldest
	// first, unless NoSelect is set.
	Inputs []*UTXO
	// NoSelect restricts the transaction to Inputs.
	NoSelect bool
	// FeeRate is the fee rate in satoshis per virtual byte; zero means
	// DefaultFeeRate. The fee is computed from the largest possible
	// signature sizes, so the real rate is never lower.
	FeeRate int64
	// Change receives the change. When nil a new script of ChangeKind is
	// made for it; pass an existing one to reuse a script.
	Change *Script
	// ChangeKind is the kind of a new change script; zero means P2WPKH.
	ChangeKind ScriptKind
	// Version is the transaction version; zero means 2.
	Version int32
	// LockTime is the transaction's lock time.
	LockTime uint32
	// Sequence is every input's sequence number; zero means
	// wire.MaxTxInSequenceNum (final, no replace-by-fee signal).
	Sequence uint32
}

// BuildTx selects inputs, adds change and returns the signed transaction
// together with the outputs it spends, in input order. The wallet is not
// changed: record the transaction with AddTx once it is broadcast (Regtest
// does both), or building again may pick the same inputs.
func (w *Wallet) BuildTx(req TxRequest) (*wire.MsgTx, []*UTXO, error) {
	rate := req.FeeRate
	if rate == 0 {
		rate = DefaultFeeRate
	}
	version := req.Version
	if version == 0 {
		version = 2
	}
	seq := req.Sequence
	if seq == 0 {
		seq = wire.MaxTxInSequenceNum
	}

	w.mu.Lock()
	inputs := make([]*UTXO, 0, len(req.Inputs))
	chosen := map[wire.OutPoint]bool{}
	for _, u := range req.Inputs {
		if _, ok := w.unspent(u.OutPoint); !ok {
			w.mu.Unlock()
			return nil, nil, fmt.Errorf("testenv: input %v is not an unspent wallet output", u.OutPoint)
		}
		if chosen[u.OutPoint] {
			w.mu.Unlock()
			return nil, nil, fmt.Errorf("testenv: input %v given twice", u.OutPoint)
		}
		chosen[u.OutPoint] = true
		inputs = append(inputs, u)
	}
	var candidates []*UTXO
	if !req.NoSelect {
		for _, u := range w.spendable() {
			if !chosen[u.OutPoint] {
				candidates = append(candidates, u)
			}
		}
	}
	w.mu.Unlock()

	var outSum int64
	for _, o := range req.Outputs {
		outSum += o.Value
	}
	var inSum int64
	for _, u := range inputs {
		inSum += u.Value
	}

	// The change output's script is needed for the size estimate; a
	// placeholder of the right kind stands in until change is known to be
	// needed, so no wallet key is used up for nothing.
	changeKind := req.ChangeKind
	if changeKind == 0 {
		changeKind = P2WPKH
	}
	changeScript := req.Change
	var placeholder []byte
	if changeScript != nil {
		placeholder = changeScript.PkScript
	} else {
		placeholder = placeholderScript(changeKind)
	}

	outs := slices.Clip(append([]*wire.TxOut(nil), req.Outputs...))
	withChange := append(outs, wire.NewTxOut(0, placeholder))
	var fee, change int64
	for {
		fee = estimateVSize(inputs, withChange) * rate
		if inSum-outSum-fee >= DustLimit {
			change = inSum - outSum - fee
			break
		}
		// Without a change output the remainder, which pays at least the
		// smaller transaction's fee, all goes to the fee.
		if inSum >= outSum+estimateVSize(inputs, outs)*rate {
			break
		}
		if len(candidates) == 0 {
			return nil, nil, fmt.Errorf("%w: have %d sat in %d inputs, need %d plus a fee of %d",
				ErrInsufficientFunds, inSum, len(inputs), outSum, fee)
		}
		inputs = append(inputs, candidates[0])
		inSum += candidates[0].Value
		candidates = candidates[1:]
	}
	if len(inputs) == 0 {
		return nil, nil, errors.New("testenv: transaction has no inputs")
	}
	if change > 0 {
		if changeScript == nil {
			changeScript = w.NewScript(changeKind)
		}
		outs = append(outs, changeScript.TxOut(change))
	}

	tx := wire.NewMsgTx(version)
	tx.LockTime = req.LockTime
	for _, u := range inputs {
		in := wire.NewTxIn(&u.OutPoint, nil, nil)
		in.Sequence = seq
		tx.AddTxIn(in)
	}
	for _, o := range outs {
		tx.AddTxOut(o)
	}
	if err := w.Sign(tx, inputs); err != nil {
		return nil, nil, err
	}
	return tx, inputs, nil
}

// Sign signs every input of tx, where prevOuts[i] is the wallet output that
// input i spends, and then runs each input's script through btcd's script
// engine with the standard verification flags. Inputs are signed with
// SIGHASH_ALL (SIGHASH_DEFAULT for taproot).
func (w *Wallet) Sign(tx *wire.MsgTx, prevOuts []*UTXO) error {
	if len(prevOuts) != len(tx.TxIn) {
		return fmt.Errorf("testenv: sign: %d inputs but %d previous outputs", len(tx.TxIn), len(prevOuts))
	}
	fetcher := txscript.NewMultiPrevOutFetcher(nil)
	for i, u := range prevOuts {
		if tx.TxIn[i].PreviousOutPoint != u.OutPoint {
			return fmt.Errorf("testenv: sign: input %d spends %v, not %v", i, tx.TxIn[i].PreviousOutPoint, u.OutPoint)
		}
		fetcher.AddPrevOut(u.OutPoint, u.TxOut())
	}
	sigHashes := txscript.NewTxSigHashes(tx, fetcher)
	for i, u := range prevOuts {
		if err := signInput(tx, i, u, sigHashes); err != nil {
			return fmt.Errorf("testenv: sign input %d (%v): %w", i, u.Script.Kind, err)
		}
	}
	for i, u := range prevOuts {
		vm, err := txscript.NewEngine(u.Script.PkScript, tx, i, txscript.StandardVerifyFlags,
			nil, sigHashes, u.Value, fetcher)
		if err == nil {
			err = vm.Execute()
		}
		if err != nil {
			return fmt.Errorf("testenv: verify input %d (%v): %w", i, u.Script.Kind, err)
		}
	}
	return nil
}

// signInput fills in the signature script and witness of input i.
func signInput(tx *wire.MsgTx, i int, u *UTXO, sigHashes *txscript.TxSigHashes) error {
	s := u.Script
	in := tx.TxIn[i]
	key := s.Keys[0]
	pub := key.PubKey().SerializeCompressed()
	switch s.Kind {
	case P2PK, P2PKH:
		sig, err := txscript.RawTxInSignature(tx, i, s.PkScript, txscript.SigHashAll, key)
		if err != nil {
			return err
		}
		b := txscript.NewScriptBuilder().AddData(sig)
		if s.Kind == P2PKH {
			b.AddData(pub)
		}
		in.SignatureScript, err = b.Script()
		in.Witness = nil
		return err
	case P2WPKH, P2SHP2WPKH:
		// For P2WPKH the script code is derived from the witness program,
		// which is the output script itself or, nested, the redeem script.
		program := s.PkScript
		in.SignatureScript = nil
		if s.Kind == P2SHP2WPKH {
			program = s.RedeemScript
			var err error
			if in.SignatureScript, err = txscript.NewScriptBuilder().AddData(s.RedeemScript).Script(); err != nil {
				return err
			}
		}
		sig, err := txscript.RawTxInWitnessSignature(tx, sigHashes, i, u.Value, program, txscript.SigHashAll, key)
		if err != nil {
			return err
		}
		in.Witness = wire.TxWitness{sig, pub}
		return nil
	case P2WSHMultisig:
		// CHECKMULTISIG pops one item too many: the witness starts with an
		// empty element, then the signatures in public key order.
		witness := wire.TxWitness{nil}
		for _, k := range s.Keys[:2] {
			sig, err := txscript.RawTxInWitnessSignature(tx, sigHashes, i, u.Value, s.WitnessScript, txscript.SigHashAll, k)
			if err != nil {
				return err
			}
			witness = append(witness, sig)
		}
		in.SignatureScript = nil
		in.Witness = append(witness, s.WitnessScript)
		return nil
	case P2TR:
		// BIP 86: the output key commits to no script tree, so the tweak
		// uses an empty root.
		sig, err := txscript.RawTxInTaprootSignature(tx, sigHashes, i, u.Value, s.PkScript, nil, txscript.SigHashDefault, key)
		if err != nil {
			return err
		}
		in.SignatureScript = nil
		in.Witness = wire.TxWitness{sig}
		return nil
	}
	return fmt.Errorf("unknown script kind %v", s.Kind)
}

// inputWeight returns the largest weight of an input spending a script of
// the kind: its non-witness bytes (outpoint, script length, signature
// script, sequence) times four, plus its witness bytes. ECDSA signatures
// are counted at their largest, 72 bytes plus the sighash byte.
func inputWeight(kind ScriptKind) (weight int64, witness bool) {
	const (
		base     = 32 + 4 + 4 // outpoint, sequence
		ecdsaSig = 1 + 73     // push, DER signature with sighash type
		pubKey   = 1 + 33     // push, compressed key
	)
	switch kind {
	case P2PK:
		return 4 * (base + 1 + ecdsaSig), false
	case P2PKH:
		return 4 * (base + 1 + ecdsaSig + pubKey), false
	case P2WPKH:
		return 4*(base+1) + 1 + ecdsaSig + pubKey, true
	case P2SHP2WPKH:
		return 4*(base+1+1+22) + 1 + ecdsaSig + pubKey, true
	case P2WSHMultisig:
		const witnessScript = 1 + 3*34 + 1 + 1
		return 4*(base+1) + 1 + 1 + 2*ecdsaSig + 1 + witnessScript, true
	case P2TR:
		return 4*(base+1) + 1 + 1 + 64, true
	}
	return 0, false
}

// estimateVSize returns the largest virtual size of a transaction spending
// ins to outs once signed.
func estimateVSize(ins []*UTXO, outs []*wire.TxOut) int64 {
	weight := int64(4 * (4 + 4 + wire.VarIntSerializeSize(uint64(len(ins))) + wire.VarIntSerializeSize(uint64(len(outs)))))
	for _, o := range outs {
		weight += int64(4 * (8 + wire.VarIntSerializeSize(uint64(len(o.PkScript))) + len(o.PkScript)))
	}
	var segwit bool
	var bare int64 // inputs without a witness, which then need an empty one
	for _, u := range ins {
		w, wit := inputWeight(u.Script.Kind)
		weight += w
		if wit {
			segwit = true
		} else {
			bare++
		}
	}
	if segwit {
		weight += 2 + bare // marker and flag, empty witness counts
	}
	return (weight + 3) / 4
}

// placeholderScript returns an output script of the kind's size, for
// estimating a transaction's size before its change script exists.
func placeholderScript(kind ScriptKind) []byte {
	switch kind {
	case P2PK:
		return make([]byte, 35)
	case P2PKH:
		return make([]byte, 25)
	case P2WPKH:
		return make([]byte, 22)
	case P2SHP2WPKH:
		return make([]byte, 23)
	}
	return make([]byte, 34) // P2WSH and P2TR
}
