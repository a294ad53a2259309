package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// These tests run the real terraform binary against the installed
// schema-only provider (make terraform-check sets AMBER_TF_CHECK=schema and
// TF_CLI_CONFIG_FILE), or the real provider with REAL_PROVIDER=1
// (AMBER_TF_CHECK=real), and show that the checker fails on real mistakes
// with Terraform's own diagnostics.

const header = `terraform {
  required_providers {
    aws = { source = "hashicorp/aws", version = "~> 6.25" }
  }
}

provider "aws" {
  region = "eu-west-1"
}
`

func terraformDir(t *testing.T) (string, func(args ...string) (string, error)) {
	t.Helper()
	if os.Getenv("AMBER_TF_CHECK") == "" {
		t.Skip("AMBER_TF_CHECK is not set: run through `make terraform-check`, which installs the schema-only provider")
	}
	bin := os.Getenv("TERRAFORM")
	if bin == "" {
		bin = "terraform"
	}
	dir := t.TempDir()
	run := func(args ...string) (string, error) {
		cmd := exec.Command(bin, args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "TF_IN_AUTOMATION=1", "CHECKPOINT_DISABLE=1", "TF_INPUT=0")
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		return out.String(), err
	}
	if err := os.WriteFile(filepath.Join(dir, "main.tf"), []byte(header), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := run("init", "-backend=false", "-no-color"); err != nil {
		t.Fatalf("terraform init: %v\n%s", err, out)
	}
	return dir, run
}

type diagnostic struct {
	Severity string `json:"severity"`
	Summary  string `json:"summary"`
	Detail   string `json:"detail"`
}

func validate(t *testing.T, dir string, run func(...string) (string, error), body string) []diagnostic {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, "main.tf"), []byte(header+body), 0o644); err != nil {
		t.Fatal(err)
	}
	out, _ := run("validate", "-json", "-no-color")
	var res struct {
		Valid       bool         `json:"valid"`
		Diagnostics []diagnostic `json:"diagnostics"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("terraform validate -json: %v\n%s", err, out)
	}
	if res.Valid != (len(res.Diagnostics) == 0) && res.Valid {
		t.Logf("warnings: %+v", res.Diagnostics)
	}
	return res.Diagnostics
}

func TestCheckerCatchesMistakes(t *testing.T) {
	dir, run := terraformDir(t)

	// The same resources written correctly pass, so each failure below
	// comes from its one mistake.
	good := `
resource "aws_s3_bucket" "b" {
  bucket = "amber-snapshots"
}
resource "aws_s3_bucket_versioning" "v" {
  bucket = aws_s3_bucket.b.id
  versioning_configuration {
    status = "Enabled"
  }
}
resource "aws_lb_target_group" "tg" {
  port              = 50001
  protocol          = "TCP"
  proxy_protocol_v2 = true
  health_check {
    path = "/readyz"
  }
}
`
	if d := validate(t, dir, run, good); len(d) != 0 {
		t.Fatalf("the correct configuration got diagnostics: %+v", d)
	}

	cases := []struct {
		name, body, summary, detail string
	}{
		{"misspelled attribute", strings.Replace(good, `bucket = "amber-snapshots"`, `buckt = "amber-snapshots"`, 1),
			"Unsupported argument", `An argument named "buckt" is not expected here. Did you mean "bucket"?`},
		{"missing required argument", strings.Replace(good, "bucket = aws_s3_bucket.b.id", "", 1),
			"Missing required argument", `The argument "bucket" is required, but no definition was found.`},
		{"block written as attribute", strings.Replace(good, "health_check {", "health_check = {", 1),
			"Unsupported argument", `Did you mean to define a block of type "health_check"?`},
		{"wrong-typed value", strings.Replace(good, "port              = 50001", `port              = "electrum"`, 1),
			"Incorrect attribute value type", `Inappropriate value for attribute "port": a number is required.`},
		{"missing required block", strings.Replace(good, "versioning_configuration {\n    status = \"Enabled\"\n  }", "", 1),
			"Insufficient versioning_configuration blocks", `At least 1 "versioning_configuration" blocks are required.`},
		{"unknown resource type", good + "resource \"aws_s3_bukket\" \"x\" {}\n",
			"Invalid resource type", `The provider hashicorp/aws does not support resource type "aws_s3_bukket".`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.body == good {
				t.Fatal("the mistake was not written into the configuration")
			}
			diags := validate(t, dir, run, c.body)
			for _, d := range diags {
				if d.Severity == "error" && d.Summary == c.summary && strings.Contains(d.Detail, c.detail) {
					return
				}
			}
			t.Fatalf("want error %q containing %q, got %+v", c.summary, c.detail, diags)
		})
	}
}

func TestPlanIsRefused(t *testing.T) {
	if os.Getenv("AMBER_TF_CHECK") != "schema" {
		t.Skip("only the schema-only provider refuses plans")
	}
	dir, run := terraformDir(t)
	body := `
resource "aws_s3_bucket" "b" {
  bucket = "amber-snapshots"
}
`
	if err := os.WriteFile(filepath.Join(dir, "main.tf"), []byte(header+body), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := run("plan", "-no-color", "-refresh=false")
	if err == nil {
		t.Fatalf("terraform plan succeeded against the schema-only provider:\n%s", out)
	}
	if !strings.Contains(out, "planning aws_s3_bucket is not supported by the schema-only provider") || !strings.Contains(out, "REAL_PROVIDER=1") {
		t.Fatalf("plan failed without the provider's explanation:\n%s", out)
	}
}
