package chain

import (
	"fmt"

	"github.com/btcsuite/btcd/address/v2"
	"github.com/btcsuite/btcd/txscript/v2"
)

// AddressToScript returns the output script that pays addr on the network:
// base58 P2PKH and P2SH, bech32 P2WPKH and P2WSH, bech32m P2TR and P2A.
// An address of another network is refused, as are raw public keys, which
// btcd would otherwise accept as an address. Testnet, testnet4, signet and
// regtest share base58 prefixes, so their base58 addresses are accepted on
// each other.
func AddressToScript(net *Network, addr string) ([]byte, error) {
	a, err := address.DecodeAddress(addr, net.Params)
	if err != nil {
		return nil, fmt.Errorf("chain: address %q: %w", addr, err)
	}
	if _, isPubKey := a.(*address.AddressPubKey); isPubKey {
		return nil, fmt.Errorf("chain: address %q: a public key is not an address", addr)
	}
	if !a.IsForNet(net.Params) {
		return nil, fmt.Errorf("chain: address %q is not for %s", addr, net)
	}
	script, err := txscript.PayToAddrScript(a)
	if err != nil {
		return nil, fmt.Errorf("chain: address %q: %w", addr, err)
	}
	return script, nil
}

// ScriptToAddress returns the address an output script pays on the network,
// and false for scripts without one: pay-to-pubkey, bare multisig,
// OP_RETURN, unknown witness versions and non-standard scripts.
func ScriptToAddress(net *Network, pkScript []byte) (string, bool) {
	class, addrs, _, err := txscript.ExtractPkScriptAddrs(pkScript, net.Params)
	if err != nil || len(addrs) != 1 {
		return "", false
	}
	switch class {
	case txscript.PubKeyHashTy, txscript.ScriptHashTy,
		txscript.WitnessV0PubKeyHashTy, txscript.WitnessV0ScriptHashTy,
		txscript.WitnessV1TaprootTy, txscript.PayToAnchorTy:
		return addrs[0].EncodeAddress(), true
	}
	return "", false
}
