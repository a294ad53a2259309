// Command tools installs the pinned binaries the integration tests run
// (btcd, MinIO) into .tools/ at the repository root, skipping those already
// there, and prints the path of each:
//
//	go run ./internal/testenv/cmd/tools btcd minio
//
// With no arguments it installs every known tool.
package main

import (
	"fmt"
	"io"
	"os"

	"amber/internal/testenv"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "tools:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		args = testenv.ToolNames()
	}
	for _, name := range args {
		if name == "-h" || name == "--help" {
			fmt.Fprintf(stderr, "usage: tools [%v ...]\n", testenv.ToolNames())
			return nil
		}
	}
	for _, name := range args {
		fmt.Fprintf(stderr, "tools: ensuring %s\n", name)
		path, err := testenv.EnsureTool(name)
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, path)
	}
	return nil
}
