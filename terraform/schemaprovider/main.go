package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"

	"github.com/hashicorp/terraform-plugin-go/tfprotov5"
	"github.com/hashicorp/terraform-plugin-go/tfprotov5/tf5server"
	tfaddr "github.com/hashicorp/terraform-registry-address"
)

// The provider this program stands in for.
const (
	providerSource  = "hashicorp/aws"
	providerVersion = "6.25.0"
	schemaFile      = "schema.json"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "install" {
		if err := install(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "schemaprovider install:", err)
			os.Exit(1)
		}
		return
	}
	if err := serve(); err != nil {
		fmt.Fprintln(os.Stderr, "schemaprovider:", err)
		os.Exit(1)
	}
}

// address is the provider's full source address; the default registry host
// comes from Terraform's own address library.
func address() (tfaddr.Provider, error) {
	return tfaddr.ParseProviderSource(providerSource)
}

func serve() error {
	addr, err := address()
	if err != nil {
		return err
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	s, err := loadSchema(filepath.Join(filepath.Dir(exe), schemaFile))
	if err != nil {
		return err
	}
	resp, err := s.proto()
	if err != nil {
		return fmt.Errorf("installed schema: %w", err)
	}
	srv := &server{schema: resp}
	return tf5server.Serve(addr.String(), func() tfprotov5.ProviderServer { return srv })
}

// install extracts the schema from the unpacked npm package and lays this
// binary and the schema out as an unpacked filesystem mirror entry.
func install(args []string) error {
	fs := flag.NewFlagSet("install", flag.ContinueOnError)
	pkg := fs.String("package", "", "directory of the unpacked @cdktf/provider-aws package")
	mirror := fs.String("mirror", "", "filesystem mirror directory to install into")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *pkg == "" || *mirror == "" {
		return fmt.Errorf("both -package and -mirror are required")
	}
	s, err := Extract(*pkg)
	if err != nil {
		return err
	}
	addr, err := address()
	if err != nil {
		return err
	}
	dir := filepath.Join(*mirror, addr.Hostname.String(), addr.Namespace, addr.Type, providerVersion, runtime.GOOS+"_"+runtime.GOARCH)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := s.write(filepath.Join(dir, schemaFile)); err != nil {
		return err
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	if err := copyFile(exe, filepath.Join(dir, fmt.Sprintf("terraform-provider-%s_v%s", addr.Type, providerVersion))); err != nil {
		return err
	}
	fmt.Fprintf(os.Stdout, "installed %s %s (%d resources, %d data sources) into %s\n", addr.ForDisplay(), providerVersion, len(s.Resources), len(s.DataSources), *mirror)
	return nil
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	tmp := dst + ".tmp"
	out, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, dst)
}
