package peers

// seeds are the built-in peers each network starts from, as real names
// (host, then s/t with a port or bare for the network's default port).
// They are the long-running public servers ElectrumX ships with; a dead
// one costs three failed tries and is forgotten. Keyed by
// chain.Network.String().
var seeds = map[string][]string{
	"Bitcoin/mainnet": {
		"electrum.vom-stausee.de s t",
		"electrum.hsmiths.com s t",
		"helicarrier.bauerj.eu s t",
		"electrum.hodlister.co s",
		"electrum3.hodlister.co s",
		"fortress.qtornado.com s443 t",
		"ecdsa.net s110 t",
		"e2.keff.org s t",
		"currentlane.lovebitco.in s t",
		"electrum.jochen-hoenicke.de s50005 t50003",
		"vps5.hsmiths.com s",
		"electrum.emzy.de s",
		"electrum1.cipig.net t10000 s20000",
		"ulrichard.ch s",
		"hodlers.beer s",
		"5.9.83.108 s",
		"v7gtzf7nua6hdmb2wtqaqioqmesdb4xrlly4zwr7bvayxv2bpg665pqd.onion t",
		"qeqgdlw2ezf3uabook2ny3lztjxxzeyyoqw2k7cempzvqpknbmevhmyd.onion t",
		"kciybn4d4vuqvobdl2kdp3r2rudqbqvsymqwg4jomzft6m6gaibaf6yd.onion t",
		"explorerzydxu5ecjrkwceayqybizmpjjznk5izmitf2modhcusuqlid.onion t110",
	},
	"Bitcoin/testnet": {
		"testnet.qtornado.com s t",
		"blackie.c3-soft.com s57006 t57005",
		"electrum.blockstream.info t60001 s60002",
		"testnet.aranguren.org s t",
		"explorerzydxu5ecjrkwceayqybizmpjjznk5izmitf2modhcusuqlid.onion t143",
		"gsw6sn27quwf6u3swgra6o7lrp5qau6kt3ymuyoxgkth6wntzm2bjwyd.onion s51002 t51001",
	},
	"Bitcoin/testnet4": {
		"blackie.c3-soft.com s57010 t57009",
		"fulcrum.theuplink.net s60002",
		"bitcoin.stagemole.eu s5010 t5000",
		"testnet4.qtornado.com s51012 t51011",
		"gsw6sn27quwf6u3swgra6o7lrp5qau6kt3ymuyoxgkth6wntzm2bjwyd.onion s52002 t52001",
	},
	// Signet and regtest have no public seeds: use PEER_SEEDS.
}
