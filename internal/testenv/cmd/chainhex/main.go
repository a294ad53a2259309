// Command chainhex writes a preset chain of the chain generator as raw
// block hex lines, heights 1 to the tip: the CHAIN file that the
// side-by-side scripts load into a daemon for Amber and a peer server.
//
//	go run ./internal/testenv/cmd/chainhex -preset peer -out peer.hex
//
// The chain comes from the repository's bench cache, made and kept there
// on first use.
package main

import (
	"bufio"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"amber/internal/testenv"
	"amber/internal/testenv/chaingen"
)

func main() {
	preset := flag.String("preset", "peer", "chain preset: tiny, small, large, busy or peer")
	out := flag.String("out", "", "file to write (required)")
	flag.Parse()
	spec, ok := chaingen.Preset(*preset)
	if !ok || *out == "" {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(spec, *out, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "chainhex:", err)
		os.Exit(1)
	}
}

// run writes spec's chain to out, reporting progress and the result to
// msgs.
func run(spec chaingen.Spec, out string, msgs io.Writer) error {
	root, err := testenv.RepoRoot()
	if err != nil {
		return err
	}
	c, err := chaingen.LoadDir(filepath.Join(root, chaingen.CacheDir), spec, func(format string, args ...any) {
		fmt.Fprintf(msgs, format+"\n", args...)
	})
	if err != nil {
		return err
	}
	if err := write(out, c.Blocks); err != nil {
		return err
	}
	fmt.Fprintf(msgs, "%s: %d blocks, %d transactions\n", out, c.Height(), c.Txs())
	return nil
}

func write(path string, blocks [][]byte) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	for _, b := range blocks {
		if _, err := w.WriteString(hex.EncodeToString(b) + "\n"); err != nil {
			f.Close()
			return err
		}
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
